"""The ``bars`` data set: one bar per image, at a position (low level) and an orientation (high level)."""

from __future__ import annotations

import torch

from pyro_vlae.data import DatasetPlugin, TensorData

SIZE = 16


def make_bars(num: int, seed: int = 0) -> TensorData:
    """``num`` images (N, 1, 16, 16) with values in [0.05, 0.95] and their factors."""
    g = torch.Generator().manual_seed(seed)
    orientation = torch.randint(2, (num,), generator=g)
    position = torch.randint(2, SIZE - 4, (num,), generator=g)
    grid = torch.arange(SIZE)
    rows = ((grid[None, :] >= position[:, None]) & (grid[None, :] < position[:, None] + 3)).float()  # (N, 16)
    horizontal = rows[:, :, None].expand(num, SIZE, SIZE)
    images = torch.where(orientation[:, None, None] == 0, horizontal, horizontal.transpose(1, 2))
    x = 0.05 + 0.9 * images[:, None]
    factors = torch.stack([position.float(), orientation.float()], dim=1)
    return TensorData(x, factors, ("position", "orientation"))


class Bars(DatasetPlugin):
    """16×16 images of a 3-pixel bar, horizontal or vertical, generated from a seed.

    :param num_train: training images.
    :param num_test: test images.
    :param seed: generator seed (the test split uses ``seed + 1``).
    """

    name = "bars"
    description = "16×16 horizontal/vertical bars with position and orientation factors"
    shape = (1, SIZE, SIZE)
    value_range = (0.0, 1.0)
    default_likelihood = "gaussian"
    factor_levels = {"position": 1, "orientation": 2}
    recommended = {"z_dims": (2, 2), "width": 0.25, "batch_size": 64, "lr": 1e-3, "steps": 1000, "warmup_steps": 200}

    def __init__(self, data_dir=None, download=False, num_train: int = 2000, num_test: int = 200, seed: int = 0):
        super().__init__(data_dir, download)
        self.num_train, self.num_test, self.seed = int(num_train), int(num_test), int(seed)

    def load(self, split: str = "train") -> TensorData:
        self.check_split(split)
        if split == "train":
            return make_bars(self.num_train, self.seed)
        return make_bars(self.num_test, self.seed + 1)
