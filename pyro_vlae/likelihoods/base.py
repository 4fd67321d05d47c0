"""The decoder likelihood r(x; f0(z̃1)) of the paper's eq. (10), as its own object."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor, nn

from ..errors import DataError


class Likelihood(nn.Module, ABC):
    """A family r(x; θ) of distributions over one data point, θ produced by the decoder.

    The decoder ``f0`` outputs ``params_per_channel`` values for every data channel
    (images: ``(*batch, C * k, H, W)``; flat data: ``(*batch, D * k)``); :meth:`forward` turns
    them into a :class:`~pyro.distributions.TorchDistribution` whose event shape is the
    data's shape, so ``pyro.sample("x", likelihood(params), obs=x)`` scores a batch. ``batch``
    is usually ``(B,)``; vectorised particles and parallel ``Predictive`` add leading
    dimensions, so index from the end: :attr:`event_dim` dimensions make one data point.

    Subclasses are registered through the ``pyro_vlae.likelihoods`` entry point group.

    :param value_range: the interval ``(low, high)`` the data lives in; the library passes the
        data set's ``value_range``, so every subclass's constructor must accept it.
    """

    #: shape of one data point, set by :meth:`bind`
    x_shape: tuple[int, ...] | None = None

    #: short name used on the command line (the entry-point name)
    name: ClassVar[str] = ""
    #: one line for ``pyro-vlae plugins``
    description: ClassVar[str] = ""
    #: decoder outputs per data channel
    params_per_channel: ClassVar[int] = 1
    #: whether ``log_prob`` is already a log-probability mass over the data's levels (Bernoulli,
    #: the discretized likelihoods) rather than a density; bits/dim adds no bin width then
    #: (:func:`~pyro_vlae.evaluate.iwae.bits_per_dim`)
    discrete: ClassVar[bool] = False

    def __init__(self, value_range: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        low, high = (float(v) for v in value_range)
        if not low < high:
            raise DataError(
                f"value_range must satisfy low < high, got {value_range}",
                "pass the interval the data lives in, e.g. (0, 1) or (-1, 1)",
            )
        self.value_range = (low, high)

    def num_params(self, channels: int) -> int:
        """Decoder outputs along dim 1 for data with ``channels`` channels (or features)."""
        return channels * self.params_per_channel

    def bind(self, x_shape: tuple[int, ...]) -> None:
        """Called once by the model with the shape of one data point.

        Likelihoods with per-pixel parameters create them here (calling ``super().bind``).
        """
        self.x_shape = tuple(int(s) for s in x_shape)

    def event_dim(self, params: Tensor) -> int:
        """Trailing dimensions of ``params`` that make one data point (one batch dimension
        assumed before :meth:`bind`)."""
        return len(self.x_shape) if self.x_shape is not None else params.dim() - 1

    @abstractmethod
    def forward(self, params: Tensor) -> TorchDistribution:
        """The distribution r(x; params), batch shape ``(B,)``, event shape = data shape."""

    def split(self, params: Tensor) -> tuple[Tensor, ...]:
        """Split decoder output into ``params_per_channel`` tensors of the data's shape."""
        return params.chunk(self.params_per_channel, dim=-self.event_dim(params))

    def squash(self, raw: Tensor) -> Tensor:
        """Map an unconstrained decoder output into the data range (the authors' output)."""
        low, high = self.value_range
        return low + (high - low) * torch.sigmoid(raw)

    def check(self, x: Tensor) -> None:
        """Raise :class:`DataError` if this likelihood cannot score ``x``."""
        if not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise DataError(
                f"data contains {bad} NaN or infinite values",
                "clean the data set (drop or impute those entries) before training",
            )
        low, high = self.value_range
        lo, hi = float(x.min()), float(x.max())
        if lo < low - 1e-6 or hi > high + 1e-6:
            raise DataError(
                f"data values span [{lo:.4g}, {hi:.4g}] but the {self.name or type(self).__name__} "
                f"likelihood expects the range [{low:g}, {high:g}]",
                "rescale the data, or give the likelihood the right value_range",
            )

    def extra_repr(self) -> str:
        return f"value_range={self.value_range}"
