"""CelebA aligned faces (Liu et al., 2015), streamed from the JPEG files with torchvision."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError

import torchvision
from torchvision import transforms

from ..errors import DataError
from .base import DatasetPlugin, StreamData
from .files import default_data_dir, missing, stage

LIST_FILES = (
    "list_eval_partition.txt",
    "identity_CelebA.txt",
    "list_attr_celeba.txt",
    "list_bbox_celeba.txt",
    "list_landmarks_align_celeba.txt",
)
IMAGES = "img_align_celeba"
SOURCE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Align&Cropped Images, Anno, Eval)"


class _CelebAFiles(torchvision.datasets.CelebA):
    """torchvision's CelebA reader, accepting list files without checking their checksums
    (their contents are parsed right after, so a subset of the data set works too)."""

    def _check_integrity(self) -> bool:
        folder = os.path.join(self.root, self.base_folder)
        return all(os.path.isfile(os.path.join(folder, f)) for f in LIST_FILES) and os.path.isdir(
            os.path.join(folder, IMAGES)
        )


def celeba_transform(crop: int = 108, size: int = 64) -> transforms.Compose:
    """The authors' preprocessing: centre crop ``crop`` × ``crop``, resize to ``size``, scale to [−1, 1]."""
    return transforms.Compose(
        [transforms.CenterCrop(crop), transforms.Resize(size), transforms.ToTensor(), transforms.Normalize(0.5, 0.5)]
    )


class CelebA(DatasetPlugin):
    """CelebA aligned and cropped faces: centre crop 108, resize to 64×64, RGB in [−1, 1].

    Streamed from disk by worker processes (202,599 JPEGs). ``--data-dir`` is the folder holding
    ``img_align_celeba/`` and the list files (``list_eval_partition.txt``, ...), or its parent in
    torchvision's layout (``DIR/celeba/``). Splits follow ``list_eval_partition.txt``.

    :param num_workers: loader worker processes.
    """

    name = "celeba"
    description = "CelebA aligned faces, centre crop 108 → 64×64 RGB in [-1,1], streamed"
    shape = (3, 64, 64)
    value_range = (-1.0, 1.0)
    default_likelihood = "laplace"
    splits = ("train", "valid", "test")
    # reference-specs: 4 layers of 10, Adam 2e-4, batch 100; L1 loss with loss_ratio 0.5 = Laplace b = 2
    recommended = {
        "z_dims": (10, 10, 10, 10),
        "batch_size": 100,
        "lr": 2e-4,
        "steps": 100000,
        "warmup_steps": 10000,
        "likelihood_options": {"scale": 2.0},
    }

    def __init__(self, data_dir=None, download=True, num_workers: int | None = None) -> None:
        super().__init__(data_dir, download)
        self.num_workers = num_workers

    def root(self) -> Path:
        """A folder ``ROOT`` with ``ROOT/celeba/img_align_celeba`` (linked from the cache if needed)."""
        folder = self.data_dir or default_data_dir()
        if (folder / "celeba" / IMAGES).is_dir():
            return folder
        if (folder / IMAGES).is_dir():
            if folder.name == "celeba":
                return folder.parent
            files = {f: folder / f for f in LIST_FILES if (folder / f).is_file()}
            return stage({IMAGES: folder / IMAGES, **files}, "celeba", folder)
        where = f"the folder {IMAGES}/ of JPEGs and the list files, from {SOURCE}"
        if self.download:
            try:
                torchvision.datasets.CelebA(str(folder), split="all", target_type=[], download=True)
                return folder
            except (RuntimeError, URLError, OSError, ImportError) as err:
                reason = f"download failed: {str(err).strip().splitlines()[-1]}"
                raise missing(self.name, [f"{IMAGES}/", *LIST_FILES], folder, where, reason) from err
        raise missing(self.name, [f"{IMAGES}/", *LIST_FILES], folder, where, "download disabled")

    def load(self, split: str = "train") -> StreamData:
        self.check_split(split)
        root = self.root()
        try:
            ds = _CelebAFiles(str(root), split=split, target_type=[], transform=celeba_transform())
        except RuntimeError as err:
            found = [f for f in LIST_FILES if (root / "celeba" / f).is_file()]
            lacking = [f for f in LIST_FILES if f not in found]
            raise DataError(
                f"CelebA in {self.data_dir or root} lacks " + (", ".join(lacking) or f"{IMAGES}/"),
                f"place the list files next to {IMAGES}/ (from {SOURCE})",
            ) from err
        except (ValueError, IndexError, OSError) as err:
            raise DataError(
                f"the CelebA list files in {self.data_dir or root} cannot be parsed ({type(err).__name__}: {err})",
                f"download them again from {SOURCE}",
            ) from err
        if len(ds) == 0:
            raise DataError(f"CelebA's list_eval_partition.txt names no {split} images", "check the list files")
        missing_images = [f for f in ds.filename[:1] + ds.filename[-1:] if not (root / "celeba" / IMAGES / f).is_file()]
        if missing_images:
            raise DataError(
                f"{IMAGES}/ lacks {missing_images[0]}, listed in list_eval_partition.txt",
                f"extract img_align_celeba.zip completely into {self.data_dir or root}",
            )
        return StreamData(ds, self.shape, self.num_workers)
