"""The paper's diagnostics of a trained model: Gibbs chains on the bottom layer
(Proposition 1, Fig. 2), per-layer noise variation (Figs. 3, 6–7) and latent traversals
(Fig. 5). Each returns the generated data; :mod:`pyro_vlae.plotting` saves them as pictures
(``save_gibbs``, ``save_samples``, ``save_traversals``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro import poutine
from torch import Tensor

from .errors import ConfigError
from .models.base import LatentModel


@torch.no_grad()
def gibbs_chain(model: LatentModel, x: Tensor, steps: int, use_mean: bool = False) -> Tensor:
    """Run the Gibbs chain of Proposition 1 from ``x``::

        z^(t) ~ q(z_1 | x^(t)),   x^(t+1) ~ p(x | z^(t))

    on :attr:`~LatentModel.gibbs_sites` (``z1`` for HVAE/LVAE, the whole code for VAE and
    VLAE, where Proposition 2 applies). q(z_1 | x) is the guide's marginal: the whole
    guide runs and only z_1 is kept. Each new state is a sample of the likelihood (its mean
    with ``use_mean``), clamped to the data range. Returns the likelihood's means at every
    step, ``(steps, B, *x_shape)``.
    """
    if steps < 1:
        raise ConfigError(f"the Gibbs chain needs at least one step, got {steps}", "pass steps >= 1")
    model.eval()
    low, high = model.likelihood.value_range
    means = []
    for _ in range(steps):
        guide_trace = poutine.trace(model.guide).get_trace(x)
        fixed = {name: guide_trace.nodes[name]["value"] for name in model.gibbs_sites}
        trace = poutine.trace(poutine.condition(model.model, data=fixed)).get_trace(batch_size=x.shape[0])
        site = trace.nodes["x"]
        means.append(site["fn"].mean)
        x = (site["fn"].mean if use_mean else site["value"]).clamp(low, high)
    return torch.stack(means)


@torch.no_grad()
def layer_variation(model: LatentModel, layer: int, rows: int = 8, cols: int = 8) -> Tensor:
    """Conditional sampling (the paper's Figs. 3, 6–7): each row fixes one draw of the noise
    ε of every layer except ``layer`` (1-based), which is re-drawn in every column
    (z_l = μ_l + σ_l ε_l; for an N(0, I) prior, as in the VLAE, ε_l is z_l itself).
    Returns ``rows * cols`` generated means, row-major."""
    model.eval()
    base = {
        name: torch.randn(rows, 1, d, device=model.device).expand(rows, cols, d).reshape(rows * cols, d)
        for name, d in zip(model.latent_sites, model.z_dims)
    }
    name = model.latent_sites[layer - 1]
    base[name] = torch.randn(rows * cols, model.z_dims[layer - 1], device=model.device)
    return model.generate(rows * cols, noise=base)


@torch.no_grad()
def traversal(
    model: LatentModel, layer: int, dims: Sequence[int] | None = None, steps: int = 9, span: float = 2.0
) -> Tensor:
    """The paper's Fig. 5: generated means over a grid of values of z_layer (1-based).

    With two ``dims`` (default: the layer's first two) the grid is ``steps × steps`` over
    [-span, span]², dims[0] along the columns and dims[1] down the rows; with one, every
    row traverses that dimension. The layer's other dimensions are 0; every other layer is
    drawn afresh for every image from the model (for a Markov hierarchy, the layers below
    from p(z_{l-1} | z_l)). Returns ``steps²`` images, row-major.
    """
    if not 1 <= layer <= model.num_layers:
        raise ConfigError(
            f"layer {layer} does not exist; the model has layers 1..{model.num_layers}",
            f"pass a layer between 1 and {model.num_layers}",
        )
    width = model.z_dims[layer - 1]
    dims = tuple(range(min(2, width))) if dims is None else tuple(int(d) for d in dims)
    if not 1 <= len(dims) <= 2 or len(set(dims)) != len(dims) or not all(0 <= d < width for d in dims):
        raise ConfigError(
            f"cannot traverse dimensions {list(dims)} of z{layer}, which has {width}",
            f"pass one or two distinct dimensions between 0 and {width - 1} (--dims counts from 1)",
        )
    values = torch.linspace(-span, span, steps, device=model.device)
    code = torch.zeros(steps, steps, width, device=model.device)
    code[:, :, dims[0]] = values[None, :]
    if len(dims) == 2:
        code[:, :, dims[1]] = values[:, None]
    name = model.latent_sites[layer - 1]
    return model.generate(steps * steps, fixed={name: code.reshape(steps * steps, width)})
