"""Pictures of an evaluation: layer × factor heat map, per-layer KL bars and PCA spectra."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..plotting import plt


def plot_matrix(metrics: Mapping[str, Any], path: str | Path, key: str = "probe") -> Path:
    """Heat map of a layer × factor matrix, deepest layer on top, factors by level."""
    m = np.asarray(metrics[key], dtype=float)
    names = list(metrics["factors"])
    levels = metrics.get("factor_levels", {})
    order = sorted(range(len(names)), key=lambda k: (levels.get(names[k], 99), k))
    m = m[::-1][:, order]
    layers = list(metrics["layers"])[::-1]
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
    score = metrics.get(f"ordering_{key}")
    title = {"probe": "probe informativeness", "nmi": "max-unit normalised MI",
             "intervention": "change when only this layer is re-drawn"}.get(key, key)
    ax.set_title(f"{title}; ordering score {score:.2f}" if score is not None else title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_layers(layers: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    """Per-layer KL (nats, with its share of the total) and each layer's PCA spectrum of
    posterior means (explained variance per principal axis), side by side."""
    names = list(layers)
    kl = [layers[n]["kl"] for n in names]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    bars = ax1.bar(names, kl, color="tab:blue")
    for bar, n in zip(bars, names):
        info = layers[n]
        ax1.annotate(f"{100 * info['kl_share']:.0f}%\n{info['active_units']}/{info['units']} active",
                     (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    ax1.set(ylabel="KL (nats per data point)", title="KL per layer")
    ax1.margins(y=0.25)
    for n in names:
        ev = layers[n]["pca_explained_variance"]
        ax2.plot(range(1, len(ev) + 1), ev, marker="o", label=n)
    ax2.set_xticks(range(1, max(len(layers[n]["pca_explained_variance"]) for n in names) + 1))
    ax2.set(xlabel="principal axis", ylabel="explained variance", title="PCA of posterior means", ylim=(0, 1.02))
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
