"""SVHN cropped digits (Netzer et al., 2011), read with torchvision from the ``.mat`` files."""

from __future__ import annotations

import os
from urllib.error import URLError

import torch
import torchvision

from ..errors import DataError
from .base import DatasetPlugin, TensorData
from .files import default_data_dir, missing

SOURCE = "http://ufldl.stanford.edu/housenumbers/"


class _SVHNFiles(torchvision.datasets.SVHN):
    """torchvision's SVHN reader, accepting any ``.mat`` file of the right name (the contents
    are checked after reading, so re-saved or subset files work too)."""

    def _check_integrity(self) -> bool:
        return os.path.isfile(os.path.join(self.root, self.filename))


class SVHN(DatasetPlugin):
    """SVHN cropped house-number digits, 32×32 RGB in [0, 1] (the authors' preprocessing: x/255).

    ``--data-dir`` holds ``train_32x32.mat``, ``test_32x32.mat`` and optionally
    ``extra_32x32.mat``. Reading ``.mat`` files needs scipy: ``pip install "pyro-vlae[svhn]"``.

    :param extra: train on ``train`` + ``extra`` (604,388 images, about 7.4 GB as float32;
        the authors trained on ``extra``).
    """

    name = "svhn"
    description = "SVHN cropped digits, 32×32 RGB in [0,1] (train/test/extra .mat files)"
    shape = (3, 32, 32)
    value_range = (0.0, 1.0)
    default_likelihood = "gaussian"
    splits = ("train", "test", "extra")
    factor_levels = {"label": 4}
    # the authors' vladder.py: 4 layers 5-5-5-10, Adam 2e-4, batch 100; paper-era r with σ² = 1/32
    recommended = {
        "z_dims": (5, 5, 5, 10),
        "batch_size": 100,
        "lr": 2e-4,
        "steps": 50000,
        "warmup_steps": 5000,
        "likelihood_options": {"scale": 0.177},
    }

    def __init__(self, data_dir=None, download=True, extra: bool = False) -> None:
        super().__init__(data_dir, download)
        self.extra = bool(extra)

    def read(self, split: str) -> TensorData:
        self.check_split(split)
        folder = self.data_dir or default_data_dir() / "svhn"
        filename = f"{split}_32x32.mat"
        try:
            import scipy.io  # noqa: F401  (torchvision's SVHN reader needs it)
        except ImportError as err:
            raise DataError("reading SVHN's .mat files needs scipy, which is not installed",
                            'install the svhn extra: pip install "pyro-vlae[svhn]"') from err
        if not (folder / filename).is_file():
            if not self.download:
                raise missing(self.name, [filename], folder, f"from {SOURCE}", "download disabled")
            try:
                torchvision.datasets.SVHN(str(folder), split=split, download=True)
            except (RuntimeError, URLError, OSError) as err:
                reason = f"download failed: {str(err).strip().splitlines()[-1]}"
                raise missing(self.name, [filename], folder, f"from {SOURCE}", reason) from err
        self.record_sources(folder / filename)
        try:
            ds = _SVHNFiles(str(folder), split=split)
            images, labels = torch.from_numpy(ds.data), torch.from_numpy(ds.labels)
        except (ValueError, KeyError, TypeError, OSError, IndexError) as err:
            raise DataError(
                f"{folder / filename} is not a valid SVHN file ({type(err).__name__}: {err})",
                f"download it again from {SOURCE}",
            ) from err
        if images.dim() != 4 or tuple(images.shape[1:]) != self.shape or images.dtype != torch.uint8 \
                or labels.shape != images.shape[:1]:
            raise DataError(
                f"{folder / filename} holds {tuple(images.shape)} {images.dtype} images, "
                "not N 32×32×3 uint8 images with one label each",
                f"download it again from {SOURCE}",
            )
        return TensorData(images.float().div_(255), labels.float()[:, None], ("label",))

    def load(self, split: str = "train") -> TensorData:
        data = self.read(split)
        if split == "train" and self.extra:
            extra = self.read("extra")
            return TensorData(
                torch.cat([data.x, extra.x]), torch.cat([data.factors, extra.factors]), data.factor_names
            )
        return data


