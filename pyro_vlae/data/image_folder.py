"""Any folder of images, for a user's own data, streamed from disk."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms

from ..errors import ConfigError, DataError, FallbackWarning
from .base import DatasetPlugin, StreamData
from .images import describe_unreadable, find_unreadable, list_images, read_image

SIZES = {32: {"z_dims": (5, 5, 5, 10)}, 64: {"z_dims": (10, 10, 10, 10)}}
#: what to do with files that cannot be read as images
UNREADABLE = ("skip", "stop")


class CenterSquare:
    """Crop a PIL image to its centred square (a class, so loader workers can pickle it)."""

    def __call__(self, image):
        return transforms.functional.center_crop(image, min(image.size))


class ImageFiles(Dataset):
    """The images ``paths`` read by :func:`~pyro_vlae.data.images.read_image`, transformed."""

    def __init__(self, paths: Sequence[Path], transform) -> None:
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        return self.transform(read_image(self.paths[index]))


class ImageFolder(DatasetPlugin):
    """Every image below ``--data-dir`` (any depth; PNG, JPEG, GIF, ... in any case), as RGB in [0, 1].

    Hidden files and folders (``.DS_Store``, macOS's ``._*`` files, ``.thumbnails/``) are left
    out (:func:`~pyro_vlae.data.images.list_images`). Every file is decoded once before
    training; files that cannot be read are left out with one warning that counts and lists
    them with the reason (the run's ``summary.json`` lists them too), or with
    ``unreadable="stop"`` are listed together in one error. Each image is centre-cropped to a square and resized to
    ``size`` × ``size``. A random ``test_fraction`` of the files, drawn with ``split_seed``,
    form the test split (``summary.json`` records the seed and the test files). Streamed from
    disk by worker processes, so the folder may be larger than memory.

    :param size: image side after resizing (multiples of 4; 32 and 64 use the authors' networks).
    :param test_fraction: share of the files held out as the test split.
    :param split_seed: seed of the random choice of the test files.
    :param unreadable: ``"skip"`` (leave unreadable files out, with a warning) or ``"stop"`` (list them and stop).
    :param num_workers: loader worker processes.
    """

    name = "image-folder"
    description = "your own folder of images (any depth), square-cropped and resized, streamed"
    value_range = (0.0, 1.0)
    default_likelihood = "discretized-logistic"
    recommended = {"batch_size": 64, "lr": 2e-4, "steps": 20000, "warmup_steps": 2000}

    def __init__(
        self, data_dir=None, download=False, size: int = 64, test_fraction: float = 0.1, split_seed: int = 0,
        unreadable: str = "skip", num_workers: int | None = None,
    ) -> None:
        super().__init__(data_dir, download)
        if int(size) < 4 or int(size) % 4:
            raise ConfigError(f"image size must be a positive multiple of 4, got {size}", "pass e.g. -P size=64")
        if not 0 <= float(test_fraction) < 1:
            raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}", "pass e.g. -P test_fraction=0.1")
        if unreadable not in UNREADABLE:
            raise ConfigError(f"unreadable must be one of {', '.join(UNREADABLE)}, got {unreadable!r}",
                              "pass -P unreadable=skip to leave unreadable files out, or -P unreadable=stop")
        self.size, self.test_fraction, self.num_workers = int(size), float(test_fraction), num_workers
        self.split_seed, self.unreadable = int(split_seed), unreadable
        self.shape = (3, self.size, self.size)
        self.recommended = {**self.recommended, **SIZES.get(self.size, {"z_dims": (5, 5, 5)})}
        self._files: list[Path] | None = None
        self.skipped: list[tuple[Path, str]] = []

    @property
    def root(self) -> Path:
        if self.data_dir is None or not Path(self.data_dir).is_dir():
            raise DataError(
                f"image-folder needs an existing folder of images, got {self.data_dir}",
                "pass the folder with --data-dir",
            )
        return Path(self.data_dir)

    def files(self) -> list[Path]:
        """The readable image files, sorted; the folder is listed and checked on first use."""
        if self._files is not None:
            return self._files
        root = self.root
        paths = list_images(root)
        bad = find_unreadable(paths)
        if bad and (self.unreadable == "stop" or len(bad) == len(paths)):
            raise DataError(
                f"{len(bad)} of the {len(paths)} image files in {root} cannot be read:\n"
                + describe_unreadable(bad, root),
                "replace or remove them, or train on the others with -P unreadable=skip "
                "(the default; the run's summary.json lists what was skipped)"
                if len(bad) < len(paths) else "pass a folder of images with --data-dir",
            )
        if bad:
            warnings.warn(
                f"skipping {len(bad)} unreadable file(s) of the {len(paths)} in {root} "
                f"(-P unreadable=stop stops instead):\n" + describe_unreadable(bad, root),
                FallbackWarning, stacklevel=2,
            )
        self.skipped = bad
        unreadable = {p for p, _ in bad}
        self._files = [p for p in paths if p not in unreadable]
        return self._files

    def split(self, split: str) -> list[Path]:
        """The files of ``split``: a random ``test_fraction`` of them (seeded by ``split_seed``)
        are the test split, the others the training split, each in path order."""
        files = self.files()
        n_test = int(round(len(files) * self.test_fraction))
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        chosen = sorted(order[:n_test] if split == "test" else order[n_test:])
        return [files[i] for i in chosen]

    def provenance(self) -> dict[str, Any]:
        """The split's seed and test files, and the skipped files with the reasons (paths
        relative to the folder)."""
        root = self.root
        return {
            "split": {"seed": self.split_seed, "test_fraction": self.test_fraction,
                      "test_files": [str(p.relative_to(root)) for p in self.split("test")]},
            "skipped": [{"path": str(p.relative_to(root)), "reason": r} for p, r in self.skipped],
        }

    def load(self, split: str = "train") -> StreamData:
        self.check_split(split)
        files = self.split(split)
        if not files:
            raise DataError(
                f"the {split} split of {self.data_dir} is empty ({len(self.files())} images, test_fraction "
                f"{self.test_fraction})",
                "add images or change -P test_fraction",
            )
        transform = transforms.Compose([CenterSquare(), transforms.Resize(self.size), transforms.ToTensor()])
        data = StreamData(ImageFiles(files, transform), self.shape, self.num_workers)
        self.record_sources(self.data_dir)
        return data
