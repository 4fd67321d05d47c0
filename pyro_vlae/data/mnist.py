"""MNIST, Fashion-MNIST and binarized MNIST, read with torchvision from the IDX files.

``--data-dir`` may hold the four IDX files directly (``.gz`` as downloaded, or decompressed)
or torchvision's layout ``DIR/MNIST/raw/``. Each split is one ``(N, 1, 28, 28)`` tensor in
[0, 1] (values k/255), with the class label as a ground-truth factor.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import ClassVar
from urllib.error import URLError

import numpy as np
import torch
import torchvision
from torch import Tensor

from ..errors import DataError
from .base import DatasetPlugin, TensorData
from .files import default_data_dir, find, missing, stage

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class MNIST(DatasetPlugin):
    """MNIST handwritten digits, 28×28 grey levels in [0, 1] (the authors' continuous MNIST)."""

    name = "mnist"
    description = "MNIST digits, 28×28 grey in [0,1] (IDX files; downloads if missing)"
    shape = (1, 28, 28)
    value_range = (0.0, 1.0)
    default_likelihood = "gaussian"
    factor_levels = {"label": 3}
    # the authors' vladder.py: 3 layers of 2-D codes, Adam 2e-4, batch 100; paper-era r with σ² = 1/16
    recommended = {
        "z_dims": (2, 2, 2),
        "batch_size": 100,
        "lr": 2e-4,
        "steps": 20000,
        "warmup_steps": 2000,
        "likelihood_options": {"scale": 0.25},
        # the VLAE's layers fade in from the top down over the first 30 % of the run (3000 steps per
        # layer at 20,000 steps; docs/reproduction.md: the recipe study)
        "fade_in": 0.3,
    }
    #: the torchvision class that reads (and downloads) the files
    torchvision_class: ClassVar[type] = torchvision.datasets.MNIST
    source: ClassVar[str] = "http://yann.lecun.com/exdb/mnist/"

    def root(self) -> Path:
        """A folder in torchvision's layout holding the IDX files (staged or downloaded)."""
        folder = self.data_dir or default_data_dir()
        layout = f"{self.torchvision_class.__name__}/raw"
        if all((folder / layout / name).is_file() for name in IDX_FILES):
            self.record_sources(*(folder / layout / name for name in IDX_FILES))
            return folder
        for candidate in (folder, folder / layout):
            files = find(candidate, IDX_FILES)
            if files is not None:
                self.record_sources(*files.values())
                return stage(files, layout, candidate)
        if self.download:
            try:
                self.torchvision_class(str(folder), train=True, download=True)
                self.record_sources(*(folder / layout / name for name in IDX_FILES))
                return folder
            except (RuntimeError, URLError, OSError) as err:
                reason = f"download failed: {str(err).strip().splitlines()[-1]}"
                raise missing(self.name, IDX_FILES, folder, f".gz or not, from {self.source}", reason) from err
        raise missing(self.name, IDX_FILES, folder, f".gz or not, from {self.source}", "download disabled")

    def read(self, split: str) -> tuple[Tensor, Tensor]:
        """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` of a split, validated."""
        self.check_split(split)
        root = self.root()
        try:
            ds = self.torchvision_class(str(root), train=split == "train", download=False)
            images, labels = ds.data, ds.targets
        except (AssertionError, RuntimeError, TypeError, ValueError, OSError) as err:
            prefix = "train" if split == "train" else "t10k"
            raise DataError(
                f"the {self.name} {split} files ({prefix}-images/labels) in {self.data_dir or root} are not valid "
                f"IDX files ({type(err).__name__}: {err or 'bad header or size'})",
                f"download them again from {self.source}",
            ) from err
        if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28) or labels.shape != images.shape[:1]:
            raise DataError(
                f"the {self.name} {split} files hold {tuple(images.shape)} images and {tuple(labels.shape)} labels, "
                "not N 28×28 images with one label each",
                "check that the images and labels files are not swapped or from another data set",
            )
        return images, labels

    def load(self, split: str = "train") -> TensorData:
        images, labels = self.read(split)
        x = images.unsqueeze(1).float().div_(255)
        return TensorData(x, labels.float()[:, None], ("label",))


class FashionMNIST(MNIST):
    """Fashion-MNIST clothing images, 28×28 grey levels in [0, 1]."""

    name = "fashion-mnist"
    description = "Fashion-MNIST clothes, 28×28 grey in [0,1] (IDX files; downloads if missing)"
    torchvision_class = torchvision.datasets.FashionMNIST
    source = "https://github.com/zalandoresearch/fashion-mnist"


STATIC_FILES = {"train": "binarized_mnist_train.amat", "test": "binarized_mnist_test.amat"}


def read_amat(path: Path) -> Tensor:
    """A statically binarized MNIST ``.amat`` file (one image of 784 0/1 values per line)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    rows = raw.strip().count(b"\n") + 1
    digits = np.frombuffer(raw.translate(None, b" \t\r\n"), dtype=np.uint8) - ord("0")
    if digits.size != rows * 784 or (digits > 1).any():
        raise DataError(
            f"{path} is not a binarized MNIST .amat file (expected lines of 784 values 0 or 1)",
            "download it again, or remove it to binarize MNIST dynamically",
        )
    return torch.from_numpy(digits.astype(np.float32)).view(rows, 1, 28, 28)


#: The Ladder VAE paper's setting for dynamically binarized MNIST (Sønderby et al., NeurIPS 2016;
#: the authors' ``run_models.py``): five stochastic layers of 64-32-16-8-4 units, MLPs of
#: 512-256-128-64-32 units with batch norm (the ``lvae-mlp`` stem), Adam 2e-4 on batches of
#: 256, the KL weight warmed up linearly over the first 200 of 2000 epochs.
LVAE_PAPER = {
    "z_dims": (64, 32, 16, 8, 4),
    "stem": "lvae-mlp",
    "batch_size": 256,
    "lr": 2e-4,
    "epochs": 2000,
    "warmup_epochs": 200,
}


class BinarizedMNIST(MNIST):
    """MNIST with pixels in {0, 1}.

    By default dynamically binarized: every training batch draws x ~ Bernoulli(grey level)
    anew (on the device, no per-sample Python work); the test set is binarized once with a
    fixed seed. If ``--data-dir`` holds the statically binarized set
    (``binarized_mnist_train.amat``, ``binarized_mnist_test.amat``), that is used instead.

    :param seed: seed of the test set's binarization.
    """

    name = "binarized-mnist"
    description = "MNIST binarized dynamically each batch (or the static .amat set), for Bernoulli"
    default_likelihood = "bernoulli"
    #: the VLAE's: the authors' MNIST setting with a Bernoulli likelihood
    recommended = {**MNIST.recommended, "likelihood_options": {}}
    #: the HVAE, LVAE and VAE as Sønderby et al. (2016) train them (the authors' casperkaae/LVAE)
    recipes = {"lvae": LVAE_PAPER, "hvae": LVAE_PAPER, "vae": {**LVAE_PAPER, "z_dims": (64,)}}

    def __init__(self, data_dir=None, download=True, seed: int = 0) -> None:
        super().__init__(data_dir, download)
        self.seed = int(seed)

    def load(self, split: str = "train") -> TensorData:
        self.check_split(split)
        static = find(self.data_dir, STATIC_FILES.values()) if self.data_dir is not None else None
        if static is not None:
            self.record_sources(static[STATIC_FILES[split]])
            return TensorData(read_amat(static[STATIC_FILES[split]]))
        grey = super().load(split)
        if split == "train":
            return TensorData(grey.x, grey.factors, grey.factor_names, transform=torch.bernoulli)
        g = torch.Generator().manual_seed(self.seed)
        return TensorData(torch.bernoulli(grey.x, generator=g), grey.factors, grey.factor_names)
