"""Every picture pyro-vlae writes: image grids of a model (samples, reconstructions, the
paper's diagnostics) and the charts of training and evaluation.

Images are shown in the data's range, the likelihood's ``value_range``. The file names are
:mod:`pyro_vlae.run_folder`'s, one per picture whichever command writes it:

* ``fit``: ``loss.png``, ``samples.png``, ``reconstructions.png``, ``layer{l}.png``, ``layers.png``;
* ``sample``: ``samples.png``, ``layer{l}.png``, ``layers.png`` (drawn anew);
* ``traverse``: ``traverse-z{l}.png``, ``traverse.png``; ``gibbs``: ``gibbs.png``;
* ``evaluate``: ``latents.png``, ``intervention.png``, ``hierarchy.png``.

Each grid of several layers is also saved side by side (:func:`side_by_side`), each panel
under its layer's name (:func:`titled`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402
from torchvision.utils import save_image as _save_image  # noqa: E402

from .atomic import atomic_write  # noqa: E402
from .data.base import Data  # noqa: E402
from .diagnostics import gibbs_chain, layer_variation, traversal  # noqa: E402
from .metrics_log import read_metrics  # noqa: E402
from .models.base import LatentModel  # noqa: E402
from .run_folder import (  # noqa: E402
    LAYER,
    LAYERS,
    LOSS,
    METRICS,
    RECONSTRUCTIONS,
    SAMPLES,
    TRAVERSALS,
    TRAVERSE,
)

if TYPE_CHECKING:
    from .evaluate.results import HeatMap, LayerSummary


# --------------------------------------------------------------------------- images
def to_images(x: Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Data → images in [0, 1], ``(N, C, H, W)``. Flat vectors become one-pixel-high strips
    (or squares when their length is a perfect square)."""
    low, high = value_range
    x = ((x.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    if x.dim() == 2:
        side = math.isqrt(x.shape[1])
        x = x.reshape(-1, 1, side, side) if side * side == x.shape[1] else x[:, None, None, :]
    return x


def save_image(image: Tensor, path: str | Path, **options: Any) -> None:
    """torchvision's ``save_image`` (``options`` as there), written atomically as a PNG."""
    with atomic_write(path) as f:
        _save_image(image, f, format="png", **options)


def save_images(x: Tensor, path: str | Path, nrow: int, value_range=(0.0, 1.0), padding: int = 2) -> Path:
    """Save a grid of data points as a PNG."""
    save_image(to_images(x, value_range), path, nrow=nrow, padding=padding, pad_value=1.0)
    return Path(path)


def grid(model: LatentModel, x: Tensor, nrow: int) -> Tensor:
    """Data points of ``model`` as one image grid (1-pixel white lines), in its likelihood's range."""
    return make_grid(to_images(x, model.likelihood.value_range), nrow=nrow, padding=1, pad_value=1.0)


def side_by_side(grids: Sequence[Tensor], gap: int = 6) -> Tensor:
    """Concatenate image grids left to right with white gaps, as RGB."""
    height = max(g.shape[1] for g in grids)
    parts = []
    for g in grids:
        g = g if g.shape[0] == 3 else g.expand(3, -1, -1)
        if g.shape[1] < height:
            g = torch.cat([g, torch.ones(3, height - g.shape[1], g.shape[2])], dim=1)
        parts += [g, torch.ones(3, height, gap)]
    return torch.cat(parts[:-1], dim=2)


def titled(g: Tensor, title: str, height: int = 14) -> Tensor:
    """The RGB grid ``g`` ``(3, H, W)`` under a white strip with ``title`` written in black."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (g.shape[2], height), "white")
    ImageDraw.Draw(strip).text((2, 1), title, fill="black")
    top = torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1).float() / 255
    return torch.cat([top, g.expand(3, -1, -1).cpu()], dim=1)


def layer_titles(model: LatentModel, layers: Sequence[int]) -> list[str]:
    """``z1 (bottom)``, ``z2``, ..., ``zL (top)``: the panel titles of pictures with one panel per layer."""
    def name(layer: int) -> str:
        where = " (bottom)" if layer == 1 else " (top)" if layer == model.num_layers else ""
        return f"z{layer}{where}" if model.num_layers > 1 else f"z{layer}"

    return [name(layer) for layer in layers]


def _save_grids(
    grids: Sequence[Tensor], paths: Sequence[Path], together: Path, titles: Sequence[str]
) -> list[Path]:
    """Each grid to its path, then all of them side by side to ``together``, each under its title."""
    for g, path in zip(grids, paths):
        save_image(g, path)
    save_image(side_by_side([titled(g, t) for g, t in zip(grids, titles)]), together)
    return [*paths, together]


# ---------------------------------------------------------------- pictures of a model
def save_layer_grids(
    model: LatentModel, folder: str | Path, rows: int = 8, cols: int = 8, prefix: str = ""
) -> list[Path]:
    """Per-layer noise variation (:func:`~pyro_vlae.diagnostics.layer_variation`, the paper's
    Figs. 3, 6–7): ``layer{l}.png`` for each layer (each row re-draws ε_l only) and
    ``layers.png`` with all of them side by side. ``prefix`` goes before each name (to keep
    several models' pictures in one folder; a run folder's have none)."""
    folder = Path(folder)
    layers = range(1, model.num_layers + 1)
    grids = [grid(model, layer_variation(model, layer, rows, cols), cols) for layer in layers]
    paths = [folder / (prefix + LAYER.format(layer=layer)) for layer in layers]
    return _save_grids(grids, paths, folder / (prefix + LAYERS), layer_titles(model, layers))


@torch.no_grad()
def save_sample_grid(model: LatentModel, folder: str | Path, rows: int = 8, cols: int = 8) -> Path:
    """``samples.png``: ``rows × cols`` ancestral samples."""
    path = Path(folder) / SAMPLES
    save_image(grid(model, model.generate(rows * cols), cols), path)
    return path


@torch.no_grad()
def save_samples(model: LatentModel, folder: str | Path, rows: int = 8, cols: int = 8) -> list[Path]:
    """The pictures of the model alone that ``fit`` writes, drawn anew: ``samples.png``
    (ancestral samples), ``layer{l}.png`` and ``layers.png`` (:func:`save_layer_grids`)."""
    model.eval()
    return [save_sample_grid(model, folder, rows, cols), *save_layer_grids(model, folder, rows, cols)]


def save_traversals(
    model: LatentModel,
    folder: str | Path,
    layers: Sequence[int] | None = None,
    dims: Sequence[int] | None = None,
    steps: int = 9,
    span: float = 2.0,
) -> list[Path]:
    """Latent traversals (:func:`~pyro_vlae.diagnostics.traversal`, the paper's Fig. 5):
    ``traverse-z{l}.png`` for each layer (default: all) and ``traverse.png`` with all of
    them side by side."""
    folder = Path(folder)
    layers = list(layers or range(1, model.num_layers + 1))
    grids = [grid(model, traversal(model, layer, dims, steps, span), steps) for layer in layers]
    paths = [folder / TRAVERSE.format(layer=layer) for layer in layers]
    return _save_grids(grids, paths, folder / TRAVERSALS, layer_titles(model, layers))


@torch.no_grad()
def save_gibbs(
    model: LatentModel,
    path: str | Path,
    start: Tensor | None = None,
    chains: int = 8,
    steps: int = 50,
    snapshots: int = 8,
    use_mean: bool = False,
) -> Path:
    """The paper's Fig. 2 as one PNG: left, ``chains`` Gibbs chains
    (:func:`~pyro_vlae.diagnostics.gibbs_chain`, one per row) at ``snapshots`` evenly spaced
    steps, the first column being the start; right, ancestral samples of the full model on
    the same grid. ``start``: data points to start from (the first ``chains`` are used);
    without it the chains start from uniform noise."""
    model.eval()
    if start is None:
        low, high = model.likelihood.value_range
        start = low + (high - low) * torch.rand(chains, *model.x_shape, device=model.device)
    x0 = start[:chains].to(model.device)
    chain = gibbs_chain(model, x0, steps, use_mean)
    keep = torch.linspace(0, steps - 1, snapshots - 1).round().long()
    frames = torch.cat([x0[None], chain[keep]])  # (snapshots, B, ...)
    left = grid(model, frames.transpose(0, 1).flatten(0, 1), snapshots)
    right = grid(model, model.generate(x0.shape[0] * snapshots), snapshots)
    save_image(side_by_side([titled(left, "Gibbs chains"), titled(right, "ancestral samples")]), path)
    return Path(path)


@torch.no_grad()
def write_pictures(model: LatentModel, out: str | Path, data: Data) -> list[Path]:
    """The pictures of a trained run in ``out``: loss curve, samples, reconstructions of the
    first 32 points of ``data`` (originals and reconstructions alternating) and the per-layer
    grids."""
    out = Path(out)
    model.eval()
    paths = [plot_metrics(out / METRICS, out / LOSS, model.latent_sites), save_sample_grid(model, out)]
    x = data.head(32).to(model.device)
    pairs = torch.stack([x, model.reconstruct(x)], dim=1).flatten(0, 1)
    paths.append(save_images(pairs, out / RECONSTRUCTIONS, 8, model.likelihood.value_range))
    paths += save_layer_grids(model, out)
    return paths


# --------------------------------------------------------------------------- charts
def _finish(fig, path: str | Path) -> Path:
    try:
        fig.tight_layout()
        with atomic_write(path) as f:
            fig.savefig(f, dpi=110, format=Path(path).suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return Path(path)


def plot_metrics(csv_path: str | Path, png_path: str | Path, sites: Sequence[str]) -> Path:
    """Loss curve (objective and ELBO per data point) and the KL of each of the latent
    ``sites`` against the step, from ``metrics.csv`` (:func:`~pyro_vlae.metrics_log.read_metrics`)."""
    rows = read_metrics(csv_path, sites)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    if rows:
        steps = [r.step for r in rows]
        ax1.plot(steps, [-r.loss for r in rows], label="objective (β-weighted)", lw=1)
        ax1.plot(steps, [r.elbo for r in rows], label="ELBO", lw=1)
        for site in sites:
            ax2.plot(steps, [r.kl[site] for r in rows], label=site, lw=1)
        lo = sorted(r.elbo for r in rows)[len(rows) // 10]
        ax1.set_ylim(bottom=lo - 0.05 * abs(lo))
    ax1.set(xlabel="step", ylabel="nats per data point", title="ELBO")
    ax2.set(xlabel="step", ylabel="nats", title="KL per layer")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _finish(fig, png_path)


def plot_matrix(heat_map: HeatMap, path: str | Path) -> Path:
    """Heat map of a layer × factor matrix, deepest layer on top, factors by level, titled
    with its ordering score where that is defined."""
    m = np.asarray(heat_map.values, dtype=float)
    names, levels = list(heat_map.factors), heat_map.factor_levels
    order = sorted(range(len(names)), key=lambda k: (levels.get(names[k], 99), k))
    m = m[::-1][:, order]
    layers = list(heat_map.layers)[::-1]
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 1.8, 0.7 * len(layers) + 1.4))
    im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if m[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{names[k]}\n(level {levels[names[k]]})" if names[k] in levels else names[k]
                        for k in order], fontsize=8)
    ax.set_yticks(range(len(layers)))
    ax.set_yticklabels(layers)
    score = heat_map.ordering
    title = heat_map.title if score is None else f"{heat_map.title}; ordering score {score:.2f}"
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05)
    return _finish(fig, path)


def plot_layers(layers: Mapping[str, LayerSummary], path: str | Path) -> Path:
    """Per-layer KL (nats, with its share of the total) and each layer's PCA spectrum of
    posterior means (explained variance per principal axis), side by side."""
    names = list(layers)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    bars = ax1.bar(names, [layers[n].kl for n in names], color="tab:blue")
    for bar, n in zip(bars, names):
        info = layers[n]
        ax1.annotate(f"{100 * info.kl_share:.0f}%\n{info.active_units}/{info.units} active",
                     (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    ax1.set(ylabel="KL (nats per data point)", title="KL per layer")
    ax1.margins(y=0.25)
    for n in names:
        ev = layers[n].pca_explained_variance
        ax2.plot(range(1, len(ev) + 1), ev, marker="o", label=n)
    ax2.set_xticks(range(1, max(len(layers[n].pca_explained_variance) for n in names) + 1))
    ax2.set(xlabel="principal axis", ylabel="explained variance", title="PCA of posterior means", ylim=(0, 1.02))
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    return _finish(fig, path)
