"""The data-set plugin interface: what a data set tells the library about itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import DataError


@dataclass
class TensorData:
    """A data set held as one tensor in memory.

    :param x: data points, ``(N, D)`` or ``(N, C, H, W)``, floating point.
    :param factors: optional ground-truth factors of variation, ``(N, F)``.
    :param factor_names: one name per column of ``factors``.
    """

    x: Tensor
    factors: Tensor | None = None
    factor_names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not torch.is_tensor(self.x) or not self.x.is_floating_point():
            raise DataError(
                f"data must be a floating-point tensor, got {type(self.x).__name__}"
                + (f" of {self.x.dtype}" if torch.is_tensor(self.x) else ""),
                "convert it with torch.as_tensor(array, dtype=torch.float32)",
            )
        if self.x.dim() not in (2, 4):
            raise DataError(
                f"data must have shape (N, D) or (N, C, H, W), got {tuple(self.x.shape)}",
                "add a channel dimension to grey images: x.unsqueeze(1)",
            )
        if self.factors is not None:
            if self.factors.shape[0] != self.x.shape[0]:
                raise DataError(
                    f"{self.factors.shape[0]} factor rows for {self.x.shape[0]} data points",
                    "give one row of factors per data point",
                )
            if len(self.factor_names) != self.factors.shape[1]:
                raise DataError("factor_names must name every column of factors")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one data point."""
        return tuple(self.x.shape[1:])


class DatasetPlugin(ABC):
    """A data set, registered under the ``pyro_vlae.datasets`` entry-point group.

    Subclasses set the class attributes and implement :meth:`load`. ``recommended``
    holds the model settings that suit the data (``z_dims``, ``width``, ``batch_size``,
    ``lr``, ``steps``, ``likelihood_options`` ...); the command line fills unset options
    from it. ``factor_levels`` gives the abstraction level of each ground-truth factor
    (1 = lowest), for the hierarchy metrics; ``circular_factors`` names the periodic ones
    (values in [0, 1), e.g. a hue).

    :param data_dir: folder holding the data files (``None``: the plugin's default).
    :param download: fetch missing files from the network when the plugin can.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    shape: ClassVar[tuple[int, ...]] = ()
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_likelihood: ClassVar[str] = "gaussian"
    recommended: ClassVar[dict[str, Any]] = {}
    factor_levels: ClassVar[dict[str, int]] = {}
    circular_factors: ClassVar[tuple[str, ...]] = ()
    splits: ClassVar[tuple[str, ...]] = ("train", "test")

    def __init__(self, data_dir: str | Path | None = None, download: bool = False) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else None
        self.download = download

    @abstractmethod
    def load(self, split: str = "train") -> TensorData:
        """The ``split`` part of the data set."""

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(
                f"data set {self.name!r} has no split {split!r}",
                f"choose one of: {', '.join(self.splits)}",
            )
