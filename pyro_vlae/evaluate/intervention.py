"""What each latent layer *controls*: the interventional layer × factor matrix.

The paper shows its hierarchy by conditional sampling (Figs. 3, 6–7): fix the noise of every
layer but one, re-draw that one, and look at what changes. This module turns those
pictures into numbers (definitions and references in ``docs/hierarchy.md``):

1. Draw the noise ε = (ε_1 .. ε_L) of every layer and an independent second draw ε'
   (ε_l ~ N(0, I); z_l = μ_l + σ_l ε_l, so for the VLAE's N(0, I) prior ε_l is z_l and for
   the Markov chains HVAE/LVAE it is the noise of p(z_l | z_{l+1}), as in
   :func:`~pyro_vlae.plotting.layer_variation`).
2. Generate x = g(ε) (the likelihood's mean), x_l = g(ε with ε_l replaced by ε'_l) for each
   layer l, and x' = g(ε') (every layer re-drawn: two independent samples of the model).
3. For each factor k, read v_k from the images (a :class:`~pyro_vlae.evaluate.reader.FactorReader`
   for the data set's ground-truth factors, :func:`image_statistics` for label-free ones) and
   measure the change d_k: 1[class differs] for a categorical factor, |Δ| for a continuous
   one, min(|Δ|, 1 − |Δ|) for a circular one in [0, 1).

With N pairs::

    change[l, k]     = mean_n d_k(x_n, x_{l,n})
    baseline[k]      = mean_n d_k(x_n, x'_n)
    intervention[l, k] = change[l, k] / baseline[k]

so 0 means re-drawing layer l never moves factor k and 1 means it moves it as much as
drawing a new sample altogether. :func:`~pyro_vlae.evaluate.hierarchy.ordering_score` of
the matrix (clipped to [0, 1]) over the factors with a declared abstraction level says
whether more abstract factors are controlled by deeper layers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..models.base import LatentModel
from ..plotting import to_images
from ..progress import Progress, stderr_line
from .formatting import json_safe, rounded
from .hierarchy import ordering_score
from .reader import MIN_READER_QUALITY, FactorReader
from .results import InterventionMatrix

#: label-free statistics of an image, always measured (see :func:`image_statistics`)
STATISTICS = ("ink", "centroid_x", "centroid_y", "spread", "slant", "width")


def image_statistics(x: Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> dict[str, Tensor]:
    """Label-free statistics of images, each ``(N, k)``, computed from the intensity
    I = mean over channels of the image mapped to [0, 1] (light "ink" on a dark ground),
    pixel centres at coordinates in [−1, 1] (x to the right, y down):

    * ``brightness`` (grey) or ``colour`` (one column per channel): the ink's mean value,
      Σ I·c / Σ I, independent of how much ink there is;
    * ``ink``: the ink mass, mean of I over the image;
    * ``centroid_x``, ``centroid_y``: the first moments Σ I·x / Σ I, Σ I·y / Σ I;
    * ``spread``: √(var_x + var_y), the radius of gyration from the second moments;
    * ``slant``: atan(cov_xy / var_y) in radians, the shear of the ink (the deskewing
      angle of MNIST digits): positive when the top leans left of the bottom;
    * ``width``: 2 Σ I / Σ |∇I| in pixels, area over half the perimeter, the stroke width
      of a thin stroke.
    """
    img = to_images(x, value_range)
    ink = img.mean(1)
    n, h, w = ink.shape
    mass = ink.sum((1, 2)).clamp_min(1e-6)
    xs = ((torch.arange(w) + 0.5) / w * 2 - 1)[None, None, :]
    ys = ((torch.arange(h) + 0.5) / h * 2 - 1)[None, :, None]

    def moment(f: Tensor) -> Tensor:
        return (ink * f).sum((1, 2)) / mass

    cx, cy = moment(xs), moment(ys)
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
    var_x, var_y, cov = moment(dx * dx), moment(dy * dy), moment(dx * dy)
    edges = (ink[:, :, 1:] - ink[:, :, :-1]).abs().sum((1, 2)) + (ink[:, 1:] - ink[:, :-1]).abs().sum((1, 2))
    colour = (img * ink[:, None]).sum((2, 3)) / mass[:, None]
    stats = {
        "brightness" if img.shape[1] == 1 else "colour": colour,
        "ink": ink.mean((1, 2)),
        "centroid_x": cx,
        "centroid_y": cy,
        "spread": (var_x + var_y).sqrt(),
        "slant": torch.atan(cov / var_y.clamp_min(1e-6)),
        "width": 2 * ink.sum((1, 2)) / edges.clamp_min(1e-6),
    }
    return {k: v if v.dim() == 2 else v[:, None] for k, v in stats.items()}


def factor_change(a: Tensor, b: Tensor, kind: str) -> Tensor:
    """Per-pair change ``(N,)`` between two readings ``(N, k)`` of a factor of ``kind``
    (``categorical``, ``circular`` in [0, 1), anything else continuous), mean over k."""
    if kind == "categorical":
        d = (a != b).float()
    elif kind == "circular":
        d = (a - b).abs().remainder(1.0)
        d = torch.minimum(d, 1 - d)
    else:
        d = (a - b).abs()
    return d.mean(1)


@torch.no_grad()
def intervention_effects(
    model: LatentModel,
    reader: FactorReader | None = None,
    *,
    num_pairs: int = 1000,
    batch_size: int = 250,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The unnormalised ``change`` ``(L, F)`` and the ``baseline`` ``(F,)`` of the module
    docstring over ``num_pairs`` pairs, generated ``batch_size`` at a time from noise drawn
    with its own generator seeded by ``seed`` (the global random state is not used for ε).
    Factors are the reader's (if any), then ``colour``/``brightness`` and :data:`STATISTICS`,
    on images in ``value_range`` (default: the model's likelihood's).
    Returns ``factors``, ``kinds`` (per factor), ``change`` and ``baseline`` as tensors."""
    if num_pairs < 2 or batch_size < 1:
        raise ConfigError(
            f"the intervention matrix needs at least 2 pairs and a batch of at least 1, got {num_pairs}, {batch_size}",
            "pass e.g. --intervention-samples 1000",
        )
    model.eval()
    value_range = value_range or model.likelihood.value_range
    g = torch.Generator().manual_seed(seed)
    sites, L = model.latent_sites, model.num_layers
    names: list[str] = []
    kinds: list[str] = []
    change = baseline = None
    with Progress(num_pairs, progress, stderr_line, unit="pair", prefix="intervention", desc="intervention") as bar:
        for start in range(0, num_pairs, batch_size):
            b = min(batch_size, num_pairs - start)
            eps = {s: torch.randn(b, d, generator=g).to(model.device) for s, d in zip(sites, model.z_dims)}
            other = {s: torch.randn(b, d, generator=g).to(model.device) for s, d in zip(sites, model.z_dims)}
            images = [model.generate(b, noise=eps), model.generate(b, noise=other)]
            images += [model.generate(b, noise={**eps, s: other[s]}) for s in sites]
            readings = [read_factors(x, reader, value_range) for x in images]
            if change is None:
                names = list(readings[0])
                specs = {s.name: s.kind for s in reader.specs} if reader is not None else {}
                kinds = [specs.get(n, "statistic") for n in names]
                change = torch.zeros(L, len(names), dtype=torch.float64)
                baseline = torch.zeros(len(names), dtype=torch.float64)
            for k, (name, kind) in enumerate(zip(names, kinds)):
                ref = readings[0][name]
                baseline[k] += factor_change(ref, readings[1][name], kind).double().sum()
                for layer in range(L):
                    change[layer, k] += factor_change(ref, readings[2 + layer][name], kind).double().sum()
            bar.advance(b)
    return {"factors": names, "kinds": kinds, "change": change / num_pairs, "baseline": baseline / num_pairs}


def read_factors(x: Tensor, reader: FactorReader | None, value_range: tuple[float, float]) -> dict[str, Tensor]:
    """The factors of images ``x``, each ``(N, k)``: the reader's (if any), then
    :func:`image_statistics`."""
    out = {}
    if reader is not None:
        values = reader.read(x)
        out = {name: values[:, k : k + 1] for k, name in enumerate(reader.factor_names)}
    return {**out, **image_statistics(x, value_range)}


def intervention_metrics(
    model: LatentModel,
    reader: FactorReader | None = None,
    *,
    factor_levels: Mapping[str, int] | None = None,
    num_pairs: int = 1000,
    batch_size: int = 250,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
    min_reader_quality: float = MIN_READER_QUALITY,
    progress: bool = False,
) -> InterventionMatrix:
    """The interventional layer × factor matrix of ``model`` (see the module docstring): the
    normalised ``matrix``, ``change``, ``baseline`` (rounded to 4 decimals), ``kinds``, the
    ``ordering`` score over the factors in ``factor_levels`` and the reader's quality.

    Raises :class:`~pyro_vlae.evaluate.reader.ReaderError` when ``reader`` reads some
    factor of held-out real data worse than ``min_reader_quality``; without a reader only
    the label-free statistics are measured."""
    if reader is not None:
        reader.check(min_reader_quality)
    effects = intervention_effects(
        model, reader, num_pairs=num_pairs, batch_size=batch_size, seed=seed, value_range=value_range,
        progress=progress,
    )
    change, baseline = effects["change"].numpy(), effects["baseline"].numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = np.where(baseline > 1e-9, change / baseline, np.nan)
    names = effects["factors"]
    levels = dict(factor_levels or {})
    ordered = [k for k, name in enumerate(names) if name in levels]
    clipped = np.nan_to_num(np.clip(matrix, 0, 1), nan=0.0)
    score = ordering_score(clipped[:, ordered], [levels[names[k]] for k in ordered]) if ordered else math.nan

    reader_info = None if reader is None else {
        "quality": {n: round(q, 4) for n, q in reader.quality.items()},
        "min_quality": min_reader_quality,
        **reader.info,
    }
    return InterventionMatrix(
        layers=list(model.latent_sites),
        factors=names,
        kinds=dict(zip(names, effects["kinds"])),
        factor_levels={n: levels[n] for n in names if n in levels},
        matrix=rounded(matrix),
        change=rounded(change),
        baseline=rounded(baseline),
        ordering=json_safe(score),
        pairs=num_pairs,
        seed=seed,
        reader=json_safe(reader_info),
    )


__all__ = [
    "STATISTICS",
    "factor_change",
    "image_statistics",
    "intervention_effects",
    "intervention_metrics",
    "read_factors",
]
