"""CelebA aligned faces (Liu et al., 2015), streamed from the JPEG files."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.error import URLError

import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from ..errors import DataError, FallbackWarning
from .base import DatasetPlugin, StreamData
from .files import default_data_dir, missing
from .images import read_image

IMAGES = "img_align_celeba"
ATTRIBUTES = "list_attr_celeba.txt"
PARTITION = "list_eval_partition.txt"
SOURCE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Align&Cropped Images, Anno, Eval)"
#: width of the aligned and cropped CelebA images (178 × 218)
ALIGNED_WIDTH = 178
#: images per split of the official list_eval_partition.txt, in file order
OFFICIAL_SPLIT = {"train": 162_770, "valid": 19_867, "test": 19_962}


class CentreCrop:
    """Centre crop ``crop`` × ``crop``, never padded: an image smaller than ``crop`` in either
    side is first scaled up, aspect kept, to the aligned CelebA width of 178 px (and at least
    ``crop`` px high), so a downscaled copy of the aligned set (e.g. 89 × 109) keeps the
    authors' field of view. A class, so loader workers can pickle it."""

    def __init__(self, crop: int = 108) -> None:
        self.crop = int(crop)

    def __call__(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        if w < self.crop or h < self.crop:
            s = max(ALIGNED_WIDTH / w, self.crop / h)
            image = image.resize((max(self.crop, round(w * s)), max(self.crop, round(h * s))), Image.BICUBIC)
        return transforms.functional.center_crop(image, self.crop)


def celeba_transform(crop: int = 108, size: int = 64) -> transforms.Compose:
    """The authors' preprocessing: centre crop ``crop`` × ``crop`` (:class:`CentreCrop`), resize
    to ``size``, scale to [−1, 1]."""
    return transforms.Compose(
        [CentreCrop(crop), transforms.Resize(size), transforms.ToTensor(), transforms.Normalize(0.5, 0.5)]
    )


class CelebAImages(Dataset):
    """The images ``folder/NAME`` for NAME in ``filenames``, read as RGB and transformed."""

    def __init__(self, folder: Path, filenames: list[str], transform=None) -> None:
        self.folder, self.filenames, self.transform = Path(folder), list(filenames), transform

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = read_image(self.folder / self.filenames[index])
        return self.transform(image) if self.transform is not None else image


def read_list(path: Path, header: int) -> list[list[str]]:
    """The rows of a CelebA list file after ``header`` lines, split on white space."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(
            f"cannot read {path} ({type(err).__name__}: {err})", f"download it again from {SOURCE}"
        ) from err
    return [line.split() for line in lines[header:] if line.strip()]


def fallback_split(filenames: list[str]) -> dict[str, list[str]]:
    """Without ``list_eval_partition.txt``: the files in the order of ``list_attr_celeba.txt``
    cut in the official partition's proportions (train 162,770 : valid 19,867 : test 19,962),
    which is the official partition itself for the complete data set."""
    total, n = sum(OFFICIAL_SPLIT.values()), len(filenames)
    train = round(n * OFFICIAL_SPLIT["train"] / total)
    valid = round(n * (OFFICIAL_SPLIT["train"] + OFFICIAL_SPLIT["valid"]) / total)
    return {"train": filenames[:train], "valid": filenames[train:valid], "test": filenames[valid:]}


class CelebA(DatasetPlugin):
    """CelebA aligned and cropped faces: centre crop 108, resize to 64×64, RGB in [−1, 1].

    Streamed from disk by worker processes (202,599 JPEGs). ``--data-dir`` is the folder holding
    ``img_align_celeba/`` and ``list_attr_celeba.txt`` (which lists the images), or its parent in
    torchvision's layout (``DIR/celeba/``). Splits follow ``list_eval_partition.txt`` when it is
    there, else :func:`fallback_split` (announced). Images smaller than the crop are scaled up,
    never padded (:class:`CentreCrop`, announced).

    :param num_workers: loader worker processes.
    """

    name = "celeba"
    description = "CelebA aligned faces, centre crop 108 → 64×64 RGB in [-1,1], streamed"
    shape = (3, 64, 64)
    value_range = (-1.0, 1.0)
    default_likelihood = "laplace"
    splits = ("train", "valid", "test")
    crop = 108
    # the authors' vladder.py: 4 layers of 10, Adam 2e-4, batch 100; L1 loss with loss_ratio 0.5 = Laplace b = 2
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
        self._split: dict[str, list[str]] | None = None

    def folder(self) -> Path:
        """The folder holding ``img_align_celeba/`` and the list files (downloaded if allowed)."""
        folder = self.data_dir or default_data_dir()
        for candidate in (folder, folder / "celeba"):
            if (candidate / IMAGES).is_dir():
                return candidate
        where = f"the folder {IMAGES}/ of JPEGs and {ATTRIBUTES} (optionally {PARTITION}), from {SOURCE}"
        if not self.download:
            raise missing(self.name, [f"{IMAGES}/", ATTRIBUTES], folder, where, "download disabled")
        try:
            torchvision.datasets.CelebA(str(folder), split="all", target_type=[], download=True)
        except (RuntimeError, URLError, OSError, ImportError) as err:
            reason = f"download failed: {str(err).strip().splitlines()[-1]}"
            raise missing(self.name, [f"{IMAGES}/", ATTRIBUTES], folder, where, reason) from err
        return folder / "celeba"

    def split_files(self) -> dict[str, list[str]]:
        """The image file names of every split."""
        if self._split is not None:
            return self._split
        folder = self.folder()
        if not (folder / ATTRIBUTES).is_file():
            raise DataError(
                f"CelebA in {folder} lacks {ATTRIBUTES}, which lists the images",
                f"place {ATTRIBUTES} next to {IMAGES}/ (from {SOURCE})",
            )
        rows = read_list(folder / ATTRIBUTES, header=2)
        filenames = [row[0] for row in rows]
        if not filenames:
            raise DataError(f"{folder / ATTRIBUTES} lists no images", f"download it again from {SOURCE}")
        if (folder / PARTITION).is_file():
            codes = {}
            for row in read_list(folder / PARTITION, header=0):
                if len(row) != 2 or row[1] not in ("0", "1", "2"):
                    raise DataError(
                        f"{folder / PARTITION} cannot be parsed (a line reads {' '.join(row)!r})",
                        f"download it again from {SOURCE}",
                    )
                codes[row[0]] = int(row[1])
            unlisted = [f for f in filenames if f not in codes]
            if unlisted:
                raise DataError(
                    f"{PARTITION} does not assign {unlisted[0]} (listed in {ATTRIBUTES}) to a split",
                    f"use matching list files from {SOURCE}, or remove {PARTITION} to split by file order",
                )
            split = {name: [f for f in filenames if codes[f] == i] for i, name in enumerate(self.splits)}
        else:
            split = fallback_split(filenames)
            warnings.warn(
                f"CelebA in {folder} has no {PARTITION}: split by the order of {ATTRIBUTES} in the official "
                f"proportions ({', '.join(f'{k} {len(v)}' for k, v in split.items())} images)",
                FallbackWarning,
                stacklevel=2,
            )
        self._split = split
        return split

    def load(self, split: str = "train") -> StreamData:
        self.check_split(split)
        folder = self.folder()
        filenames = self.split_files()[split]
        if not filenames:
            raise DataError(f"CelebA's {split} split is empty", "check the list files")
        images = folder / IMAGES
        absent = next((f for f in (filenames[0], filenames[-1]) if not (images / f).is_file()), None)
        if absent is not None:
            raise DataError(
                f"{IMAGES}/ lacks {absent}, listed in {ATTRIBUTES}",
                f"extract img_align_celeba.zip completely into {folder}",
            )
        self.check_sizes(images, filenames)
        self.record_sources(images, *(folder / f for f in (ATTRIBUTES, PARTITION) if (folder / f).is_file()))
        return StreamData(CelebAImages(images, filenames, celeba_transform(self.crop)), self.shape, self.num_workers)

    def check_sizes(self, images: Path, filenames: list[str], probes: int = 8) -> None:
        """Announce when images (``probes`` spread over the split) are smaller than the crop."""
        small = []
        for i in sorted({round(k * (len(filenames) - 1) / max(1, probes - 1)) for k in range(probes)}):
            try:
                with Image.open(images / filenames[i]) as image:
                    size = image.size
            except (OSError, ValueError, SyntaxError) as err:
                raise DataError(f"cannot read the image {images / filenames[i]} ({err})",
                                "replace the file with a good copy") from err
            if min(size) < self.crop:
                small.append((filenames[i], size))
        if small:
            name, (w, h) = small[0]
            warnings.warn(
                f"CelebA images are smaller than the {self.crop}-px centre crop (e.g. {name}: {w}×{h}); they are "
                f"scaled up to {ALIGNED_WIDTH} px wide before the crop, not padded",
                FallbackWarning,
                stacklevel=2,
            )
