"""Pictures of a model: sample grids, reconstructions, per-layer grids, loss curves."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid, save_image  # noqa: E402

from .models.base import LatentModel  # noqa: E402
from .run_folder import METRICS  # noqa: E402

LOSS = "loss.png"
SAMPLES = "samples.png"
RECONSTRUCTIONS = "reconstructions.png"


def to_images(x: Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Data → images in [0, 1], ``(N, C, H, W)``. Flat vectors become one-pixel-high strips
    (or squares when their length is a perfect square)."""
    low, high = value_range
    x = ((x.detach().float().cpu() - low) / (high - low)).clamp(0, 1)
    if x.dim() == 2:
        side = math.isqrt(x.shape[1])
        x = x.reshape(-1, 1, side, side) if side * side == x.shape[1] else x[:, None, None, :]
    return x


def save_images(x: Tensor, path: str | Path, nrow: int, value_range=(0.0, 1.0), padding: int = 2) -> Path:
    """Save a grid of data points as a PNG."""
    save_image(to_images(x, value_range), path, nrow=nrow, padding=padding, pad_value=1.0)
    return Path(path)


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


def save_layer_grids(
    model: LatentModel, folder: str | Path, rows: int = 8, cols: int = 8, value_range=(0.0, 1.0), prefix: str = ""
) -> list[Path]:
    """One PNG per layer (``{prefix}layer{l}.png``) and all layers side by side
    (``{prefix}layers.png``)."""
    folder = Path(folder)
    paths, grids = [], []
    for layer in range(1, model.num_layers + 1):
        images = to_images(layer_variation(model, layer, rows, cols), value_range)
        grid = make_grid(images, nrow=cols, padding=1, pad_value=1.0)
        paths.append(folder / f"{prefix}layer{layer}.png")
        save_image(grid, paths[-1])
        grids.append(grid)
    height = max(g.shape[1] for g in grids)
    gap = torch.ones(3, height, 6)
    side = torch.cat([t for g in grids for t in (g if g.shape[0] == 3 else g.expand(3, -1, -1), gap)][:-1], dim=2)
    paths.append(folder / f"{prefix}layers.png")
    save_image(side, paths[-1])
    return paths


@torch.no_grad()
def write_pictures(model: LatentModel, out: str | Path, data) -> list[Path]:
    """The pictures of a trained run in ``out``: loss curve, samples, reconstructions of the
    first 32 points of ``data`` (originals and reconstructions alternating) and the per-layer
    grids, in the data's range (the likelihood's ``value_range``)."""
    out = Path(out)
    model.eval()
    value_range = model.likelihood.value_range
    paths = [plot_metrics(out / METRICS, out / LOSS)]
    paths.append(save_images(model.generate(64), out / SAMPLES, 8, value_range))
    x = data.head(32).to(model.device)
    pairs = torch.stack([x, model.reconstruct(x)], dim=1).flatten(0, 1)
    paths.append(save_images(pairs, out / RECONSTRUCTIONS, 8, value_range))
    paths += save_layer_grids(model, out, value_range=value_range)
    return paths


def plot_metrics(csv_path: str | Path, png_path: str | Path) -> Path:
    """Loss curve (objective and ELBO per data point) and per-layer KL against the step."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    if rows:
        steps = [int(r["step"]) for r in rows]
        ax1.plot(steps, [-float(r["loss"]) for r in rows], label="objective (β-weighted)", lw=1)
        ax1.plot(steps, [float(r["elbo"]) for r in rows], label="ELBO", lw=1)
        kl_keys = [k for k in rows[0] if k.startswith("kl_z")]
        for k in kl_keys:
            ax2.plot(steps, [float(r[k]) for r in rows], label=k[3:], lw=1)
        lo = sorted(float(r["elbo"]) for r in rows)[len(rows) // 10]
        ax1.set_ylim(bottom=lo - 0.05 * abs(lo))
    ax1.set(xlabel="step", ylabel="nats per data point", title="ELBO")
    ax2.set(xlabel="step", ylabel="nats", title="KL per layer")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)
