"""``shapes``: a procedurally generated data set with factors at known levels of abstraction.

Each 32×32 RGB image shows one shape on a black background. Independent factors:

====================  =====================================  =====
factor                values                                 level
====================  =====================================  =====
``hue``               colour hue in [0, 1), full saturation  1 (low)
``size``              half-width in [0.3, 0.55] (image = 2)  2
``x``, ``y``          centre in [-0.4, 0.4]                  2
``shape``             0 square, 1 circle, 2 triangle,        3 (high)
                      3 cross, 4 diamond
====================  =====================================  =====

Images are rendered at 2× resolution and averaged (anti-aliasing), vectorised in torch:
no files, no download, identical for a given seed on every machine.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from .base import DatasetPlugin, TensorData

SHAPE_NAMES = ("square", "circle", "triangle", "cross", "diamond")
FACTOR_NAMES = ("hue", "size", "x", "y", "shape")


def hue_to_rgb(hue: Tensor) -> Tensor:
    """Fully saturated, full-value colours for hues in [0, 1): ``(N,) -> (N, 3)``."""
    k = (hue[:, None] * 6 + torch.tensor([5.0, 3.0, 1.0])) % 6
    return 1 - (torch.minimum(k, 4 - k)).clamp(0, 1)


def shape_masks(shape: Tensor, size: Tensor, x: Tensor, y: Tensor, resolution: int) -> Tensor:
    """Soft masks ``(N, resolution, resolution)`` in [0, 1] of the given shapes."""
    fine = 2 * resolution
    grid = (torch.arange(fine, dtype=torch.float32) + 0.5) / fine * 2 - 1
    d = (grid[None, None, :] - x[:, None, None]) / size[:, None, None]  # horizontal
    e = (grid[None, :, None] - y[:, None, None]) / size[:, None, None]  # vertical, down
    ad, ae = d.abs(), e.abs()
    s = shape[:, None, None]
    inside = torch.where(
        s == 0,
        (ad <= 0.85) & (ae <= 0.85),
        torch.where(
            s == 1,
            d * d + e * e <= 1.0,
            torch.where(
                s == 2,
                (e <= 0.8) & (ad <= (e + 1.0) / 1.8 * 1.15),
                torch.where(
                    s == 3,
                    ((ad <= 1.0) & (ae <= 0.33)) | ((ae <= 1.0) & (ad <= 0.33)),
                    ad + ae <= 1.15,
                ),
            ),
        ),
    )
    return F.avg_pool2d(inside.float()[:, None], 2)[:, 0]


def make_shapes(num: int, seed: int = 0, resolution: int = 32, chunk: int = 4096) -> TensorData:
    """Generate ``num`` images and their factors, deterministically from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    hue = torch.rand(num, generator=g)
    size = 0.3 + 0.25 * torch.rand(num, generator=g)
    x = 0.8 * torch.rand(num, generator=g) - 0.4
    y = 0.8 * torch.rand(num, generator=g) - 0.4
    shape = torch.randint(len(SHAPE_NAMES), (num,), generator=g)
    images = torch.empty(num, 3, resolution, resolution)
    rgb = hue_to_rgb(hue)
    for start in range(0, num, chunk):
        sl = slice(start, start + chunk)
        mask = shape_masks(shape[sl], size[sl], x[sl], y[sl], resolution)
        images[sl] = mask[:, None] * rgb[sl, :, None, None]
    factors = torch.stack([hue, size, x, y, shape.float()], dim=1)
    return TensorData(images, factors, FACTOR_NAMES)


class Shapes(DatasetPlugin):
    """The embedded ``shapes`` data set (no files needed).

    :param num_train: number of training images.
    :param num_test: number of test images.
    :param seed: generator seed (the test split uses ``seed + 1``).
    """

    name = "shapes"
    description = "embedded 32×32 RGB shapes with colour / size+position / class factors"
    shape = (3, 32, 32)
    value_range = (0.0, 1.0)
    default_likelihood = "gaussian"
    factor_levels = {"hue": 1, "size": 2, "x": 2, "y": 2, "shape": 3}
    circular_factors = ("hue",)
    # docs/reproduction.md (`shapes`): at σ = 0.1 the posteriors spread far beyond the prior and
    # the samples came out nearly one colour; a quarter width costs 2.5× less a step, which pays
    # for 3000 steps
    recommended = {
        # z2 twice as wide: it then takes the size from z3 and leaves z1 the colour alone
        # (docs/reproduction.md: shapes-levers, 3 seeds)
        "z_dims": (3, 6, 3),
        "width": 0.25,
        "batch_size": 64,
        "lr": 1e-3,
        "steps": 3000,
        "warmup_steps": 1000,
        "likelihood_options": {"scale": 0.2},
        # the VLAE's layers fade in from the top down over the first third of the run (500 steps
        # per layer at 3000 steps; docs/reproduction.md: the recipe study)
        "fade_in": 1 / 3,
    }

    def __init__(self, data_dir=None, download=False, num_train: int = 20000, num_test: int = 2000, seed: int = 0):
        super().__init__(data_dir, download)
        self.num_train, self.num_test, self.seed = int(num_train), int(num_test), int(seed)

    def load(self, split: str = "train") -> TensorData:
        self.check_split(split)
        if split == "train":
            return make_shapes(self.num_train, self.seed)
        return make_shapes(self.num_test, self.seed + 1)
