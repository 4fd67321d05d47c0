"""The paper's diagnostics of a trained model: Gibbs chains on the bottom layer
(Proposition 1, Fig. 2), per-layer noise variation (Figs. 3, 6–7) and latent traversals
(Fig. 5). Each ``*_grid`` function returns images; each ``save_*`` writes PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from pyro import poutine
from torch import Tensor
from torchvision.utils import make_grid, save_image

from .errors import ConfigError
from .models.base import LatentModel
from .plotting import save_layer_grids, to_images


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
        trace = poutine.trace(poutine.condition(model.model, data=fixed)).get_trace(num_samples=x.shape[0])
        site = trace.nodes["x"]
        means.append(site["fn"].mean)
        x = (site["fn"].mean if use_mean else site["value"]).clamp(low, high)
    return torch.stack(means)


def _side_by_side(grids: Sequence[Tensor], gap: int = 6) -> Tensor:
    """Concatenate image grids left to right with white gaps, as RGB."""
    height = max(g.shape[1] for g in grids)
    parts = []
    for g in grids:
        g = g if g.shape[0] == 3 else g.expand(3, -1, -1)
        if g.shape[1] < height:
            g = torch.cat([g, torch.ones(3, height - g.shape[1], g.shape[2])], dim=1)
        parts += [g, torch.ones(3, height, gap)]
    return torch.cat(parts[:-1], dim=2)


@torch.no_grad()
def save_gibbs(
    model: LatentModel,
    path: str | Path,
    start: Tensor | None = None,
    chains: int = 8,
    steps: int = 50,
    snapshots: int = 8,
    use_mean: bool = False,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Path:
    """The paper's Fig. 2 as one PNG: left, ``chains`` Gibbs chains (one per row) at
    ``snapshots`` evenly spaced steps, the first column being the start; right, ancestral
    samples of the full model on the same grid. ``start``: data points to start from
    (the first ``chains`` are used); without it the chains start from uniform noise."""
    model.eval()
    if start is None:
        low, high = model.likelihood.value_range
        start = low + (high - low) * torch.rand(chains, *model.x_shape, device=model.device)
    x0 = start[:chains].to(model.device)
    chain = gibbs_chain(model, x0, steps, use_mean)
    keep = torch.linspace(0, steps - 1, snapshots - 1).round().long()
    frames = torch.cat([x0[None], chain[keep]])  # (snapshots, B, ...)
    rows = frames.transpose(0, 1).flatten(0, 1)
    left = make_grid(to_images(rows, value_range), nrow=snapshots, padding=1, pad_value=1.0)
    ancestral = model.generate(x0.shape[0] * snapshots)
    right = make_grid(to_images(ancestral, value_range), nrow=snapshots, padding=1, pad_value=1.0)
    save_image(_side_by_side([left, right]), path)
    return Path(path)


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


def save_traversals(
    model: LatentModel,
    folder: str | Path,
    layers: Sequence[int] | None = None,
    dims: Sequence[int] | None = None,
    steps: int = 9,
    span: float = 2.0,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> list[Path]:
    """``traverse-z{l}.png`` for each layer (default: all) and ``traverse.png`` with all of
    them side by side."""
    folder = Path(folder)
    paths, grids = [], []
    for layer in layers or range(1, model.num_layers + 1):
        images = to_images(traversal(model, layer, dims, steps, span), value_range)
        grids.append(make_grid(images, nrow=steps, padding=1, pad_value=1.0))
        paths.append(folder / f"traverse-z{layer}.png")
        save_image(grids[-1], paths[-1])
    paths.append(folder / "traverse.png")
    save_image(_side_by_side(grids), paths[-1])
    return paths


@torch.no_grad()
def save_samples(
    model: LatentModel, folder: str | Path, rows: int = 8, cols: int = 8, value_range=(0.0, 1.0)
) -> list[Path]:
    """``sample.png`` (ancestral samples), and per-layer noise variation: ``sample-layer{l}.png``
    (each row re-draws ε_l only) and ``sample-layers.png`` (all layers side by side)."""
    folder = Path(folder)
    model.eval()
    path = folder / "sample.png"
    save_image(to_images(model.generate(rows * cols), value_range), path, nrow=cols, padding=1, pad_value=1.0)
    return [path, *save_layer_grids(model, folder, rows, cols, value_range, prefix="sample-")]
