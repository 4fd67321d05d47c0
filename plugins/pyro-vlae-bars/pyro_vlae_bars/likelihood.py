"""A Beta likelihood with a learned concentration, for data strictly inside (0, 1)."""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import Tensor, nn

from pyro_vlae.errors import DataError
from pyro_vlae.likelihoods import Likelihood


class Beta(Likelihood):
    """x ~ Beta(μκ, (1 − μ)κ) per element, μ = sigmoid(f0(z̃1)), κ > 0 learned (one for all pixels).

    :param concentration: initial κ.
    """

    name = "beta"
    description = "Beta(μκ, (1−μ)κ) per pixel with a learned concentration κ, data in (0, 1)"

    def __init__(self, concentration: float = 10.0, value_range: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__(value_range)
        self.log_concentration = nn.Parameter(torch.tensor(math.log(concentration)))

    def forward(self, params: Tensor) -> dist.TorchDistribution:
        mean = torch.sigmoid(params).clamp(1e-4, 1 - 1e-4)
        kappa = self.log_concentration.exp()
        return dist.Beta(mean * kappa, (1 - mean) * kappa).to_event(self.event_dim(params))

    def check(self, x: Tensor) -> None:
        super().check(x)
        low, high = self.value_range
        if bool(((x <= low) | (x >= high)).any()):
            raise DataError(
                "the beta likelihood needs data strictly inside (0, 1), got values at 0 or 1",
                "squeeze the data into (0, 1), e.g. 0.05 + 0.9 * x, or pick another likelihood",
            )
