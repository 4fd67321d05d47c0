"""Any folder of images, for a user's own data, streamed with torchvision's ImageFolder."""

from __future__ import annotations

from pathlib import Path

import torchvision
from torch.utils.data import Subset
from torchvision import transforms

from ..errors import ConfigError, DataError
from .base import DatasetPlugin, StreamData
from .images import read_image

SIZES = {32: {"z_dims": (5, 5, 5, 10)}, 64: {"z_dims": (10, 10, 10, 10)}}


class CenterSquare:
    """Crop a PIL image to its centred square (a class, so loader workers can pickle it)."""

    def __call__(self, image):
        return transforms.functional.center_crop(image, min(image.size))


class _AllImages(torchvision.datasets.ImageFolder):
    """ImageFolder over every image below the root, with or without class sub-folders."""

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return [""], {"": 0}


class ImageFolder(DatasetPlugin):
    """Every image below ``--data-dir`` (any depth; PNG, JPEG, ...), as RGB in [0, 1].

    Each image is centre-cropped to a square and resized to ``size`` × ``size``. Files are
    sorted by path; the last ``test_fraction`` of them form the test split. Streamed from disk
    by worker processes, so the folder may be larger than memory.

    :param size: image side after resizing (multiples of 4; 32 and 64 use the authors' networks).
    :param test_fraction: share of the files held out as the test split.
    :param num_workers: loader worker processes.
    """

    name = "image-folder"
    description = "your own folder of images (any depth), square-cropped and resized, streamed"
    value_range = (0.0, 1.0)
    default_likelihood = "discretized-logistic"
    recommended = {"batch_size": 64, "lr": 2e-4, "steps": 20000, "warmup_steps": 2000}

    def __init__(
        self, data_dir=None, download=False, size: int = 64, test_fraction: float = 0.1,
        num_workers: int | None = None,
    ) -> None:
        super().__init__(data_dir, download)
        if int(size) < 4 or int(size) % 4:
            raise ConfigError(f"image size must be a positive multiple of 4, got {size}", "pass e.g. -P size=64")
        if not 0 <= float(test_fraction) < 1:
            raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}", "pass e.g. -P test_fraction=0.1")
        self.size, self.test_fraction, self.num_workers = int(size), float(test_fraction), num_workers
        self.shape = (3, self.size, self.size)
        self.recommended = {**self.recommended, **SIZES.get(self.size, {"z_dims": (5, 5, 5)})}
        self._images: _AllImages | None = None

    def images(self) -> _AllImages:
        if self._images is not None:
            return self._images
        if self.data_dir is None or not Path(self.data_dir).is_dir():
            raise DataError(
                f"image-folder needs an existing folder of images, got {self.data_dir}",
                "pass the folder with --data-dir",
            )
        transform = transforms.Compose([CenterSquare(), transforms.Resize(self.size), transforms.ToTensor()])
        try:
            self._images = _AllImages(str(self.data_dir), transform=transform, loader=read_image)
        except FileNotFoundError as err:
            raise DataError(
                f"no image files in {self.data_dir} ({err})",
                "pass a folder holding .png, .jpg, ... images (at any depth) with --data-dir",
            ) from err
        return self._images

    def load(self, split: str = "train") -> StreamData:
        self.check_split(split)
        images = self.images()
        n_test = int(round(len(images) * self.test_fraction))
        indices = range(len(images) - n_test) if split == "train" else range(len(images) - n_test, len(images))
        if len(indices) == 0:
            raise DataError(
                f"the {split} split of {self.data_dir} is empty ({len(images)} images, test_fraction "
                f"{self.test_fraction})",
                "add images or change -P test_fraction",
            )
        data = StreamData(Subset(images, list(indices)), self.shape, self.num_workers)
        data[0]  # an unreadable first image fails here, with its name (DataError), before training
        return data


