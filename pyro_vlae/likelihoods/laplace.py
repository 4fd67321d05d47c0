"""Laplace likelihood: the authors' L1 reconstruction loss as a density."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor

from ..errors import ConfigError
from .base import Likelihood


class Laplace(Likelihood):
    """x ~ Laplace(μ, b) per element, μ = low + (high − low)·sigmoid(f0(z̃1)).

    −log r(x) = Σ|x − μ| / b + D·log(2b): the authors' loss ``loss_ratio · Σ|x̂ − x|`` is this
    likelihood with b = 1 / loss_ratio (b = 0.125 for MNIST and SVHN, b = 2 for CelebA on [−1, 1]).

    :param scale: the scale b.
    """

    name = "laplace"
    description = "factored Laplace, fixed scale b (the authors' L1 loss with b = 1/loss_ratio)"

    def __init__(self, scale: float = 0.125, value_range: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__(value_range)
        if not scale > 0:
            raise ConfigError(f"Laplace scale must be positive, got {scale}", "pass scale > 0")
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, params: Tensor) -> dist.TorchDistribution:
        loc = self.squash(params)
        return dist.Laplace(loc, self.scale.to(loc.dtype).expand_as(loc)).to_event(self.event_dim(loc))

    def extra_repr(self) -> str:
        return f"scale={float(self.scale):.4g}, " + super().extra_repr()
