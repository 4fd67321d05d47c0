"""Factored Gaussian likelihood, the paper's r (section 4.1, after eq. 11)."""

from __future__ import annotations

import math
from typing import Literal

import pyro.distributions as dist
import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .base import Likelihood

Variance = Literal["fixed", "global", "pixel"]


class Gaussian(Likelihood):
    """x ~ N(μ, σ² I) with μ = low + (high − low)·sigmoid(f0(z̃1)).

    :param scale: the standard deviation σ (the initial value when it is learned).
        The authors' paper-era code used σ² = 1/32 (SVHN) and 1/16 (MNIST).
    :param variance: ``"fixed"`` (the paper's r), ``"global"`` (one learned σ) or
        ``"pixel"`` (one learned σ per data element).
    :param min_scale: lower bound on a learned σ, keeps the likelihood bounded.
    """

    name = "gaussian"
    description = "factored Gaussian, fixed or learned (global / per-pixel) variance"

    def __init__(
        self,
        scale: float = 0.1,
        variance: Variance = "fixed",
        value_range: tuple[float, float] = (0.0, 1.0),
        min_scale: float = 1e-3,
    ) -> None:
        super().__init__(value_range)
        if not scale > 0:
            raise ConfigError(f"Gaussian scale must be positive, got {scale}", "pass scale > 0")
        if variance not in ("fixed", "global", "pixel"):
            raise ConfigError(
                f"unknown Gaussian variance {variance!r}", "use 'fixed', 'global' or 'pixel'"
            )
        self.variance = variance
        self.min_scale = float(min_scale)
        self.register_buffer("_scale", torch.tensor(float(scale)))
        self.log_scale: nn.Parameter | None = None
        if variance == "global":
            self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def bind(self, x_shape: tuple[int, ...]) -> None:
        super().bind(x_shape)
        if self.variance == "pixel" and self.log_scale is None:
            init = torch.full(x_shape, math.log(float(self._scale)))
            self.log_scale = nn.Parameter(init.to(self._scale.device))

    @property
    def scale(self) -> Tensor:
        if self.log_scale is None:
            return self._scale
        return self.log_scale.exp().clamp(min=self.min_scale)

    def forward(self, params: Tensor) -> dist.TorchDistribution:
        loc = self.squash(params)
        scale = self.scale.to(loc.dtype).expand_as(loc)
        return dist.Normal(loc, scale).to_event(self.event_dim(loc))

    def extra_repr(self) -> str:
        return f"scale={float(self.scale.mean()):.4g}, variance={self.variance!r}, " + super().extra_repr()
