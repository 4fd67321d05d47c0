"""Discretized logistic likelihood for 8-bit data (Salimans et al., PixelCNN++, 2017, eq. 2)."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor
from torch.nn import functional as F

from ..errors import DataError
from .base import Likelihood

#: number of intervals between the 256 levels of 8-bit data on [0, 1]
LEVELS = 255
#: smallest log-scale, as in PixelCNN++
MIN_LOG_SCALE = -7.0


def log_bin_mass(u: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """log P(bin of u) under Logistic(loc, exp(log_scale)), all in [0, 1] units.

    The bin of u = k/255 is [u − 1/510, u + 1/510]; the edge bins k = 0 and k = 255 extend to
    −∞ and +∞. With a = (u + 1/510 − loc)/s and b = (u − 1/510 − loc)/s the inner mass is
    σ(a) − σ(b) = σ(a)·σ(−b)·(1 − e^{b−a}), whose logarithm is finite for every input.
    """
    inv_s = torch.exp(-log_scale)
    centred = u - loc
    a = inv_s * (centred + 0.5 / LEVELS)
    b = inv_s * (centred - 0.5 / LEVELS)
    log_upper = F.logsigmoid(a)  # log P(X <= u + 1/510): the mass of the lowest bin
    log_lower = F.logsigmoid(-b)  # log P(X >= u - 1/510): the mass of the highest bin
    log_inner = log_upper + log_lower + torch.log(-torch.expm1(-inv_s / LEVELS))
    return torch.where(u < 0.5 / LEVELS, log_upper, torch.where(u > 1 - 0.5 / LEVELS, log_lower, log_inner))


def discretized_mean(loc: Tensor, log_scale: Tensor) -> Tensor:
    """E[u] = Σ_{k=1}^{255} P(u ≥ k/255) / 255 of the discretized logistic, in [0, 1] units."""
    inv_s = torch.exp(-log_scale)
    total = torch.zeros_like(loc)
    for k in range(1, LEVELS + 1):
        total += torch.sigmoid(-inv_s * ((k - 0.5) / LEVELS - loc))
    return total / LEVELS


def quantize(u: Tensor) -> Tensor:
    """Round values to the nearest of the 256 levels on [0, 1]."""
    return torch.round(u.clamp(0, 1) * LEVELS) / LEVELS


def check_8bit(x: Tensor, value_range: tuple[float, float], name: str) -> None:
    """Refuse data that is not on the 8-bit grid of ``value_range``."""
    low, high = value_range
    k = (x - low) / (high - low) * LEVELS
    off = float((k - torch.round(k)).abs().max()) if x.numel() else 0.0
    if off > 1e-3:
        raise DataError(
            f"the {name} likelihood needs 8-bit data (256 levels between {low:g} and {high:g}), "
            f"but values lie up to {off / LEVELS:.3g} away from the nearest level",
            "use it for images stored as 8-bit pixels, or pick --likelihood gaussian / laplace",
        )


class DiscretizedLogisticDistribution(dist.TorchDistribution):
    """Independent discretized logistics over the 256 levels of ``value_range``.

    ``loc`` and ``log_scale`` are in [0, 1] units (0 = ``low``, 1 = ``high``); the batch shape is
    theirs. ``log_prob`` is the log-probability of the level (it sums to 1 over the levels).
    """

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    has_rsample = False

    def __init__(self, loc: Tensor, log_scale: Tensor, value_range=(0.0, 1.0), validate_args=None):
        self.loc, self.log_scale = torch.broadcast_tensors(loc, log_scale)
        self.value_range = (float(value_range[0]), float(value_range[1]))
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property
    def support(self):
        return constraints.interval(*self.value_range)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        return type(self)(self.loc.expand(shape), self.log_scale.expand(shape), self.value_range)

    def _to_unit(self, x: Tensor) -> Tensor:
        low, high = self.value_range
        return quantize((x - low) / (high - low))

    def _from_unit(self, u: Tensor) -> Tensor:
        low, high = self.value_range
        return low + (high - low) * u

    def log_prob(self, value: Tensor) -> Tensor:
        return log_bin_mass(self._to_unit(value), self.loc, self.log_scale)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            p = torch.rand(shape, device=self.loc.device).clamp(1e-5, 1 - 1e-5)
            u = self.loc + self.log_scale.exp() * (torch.log(p) - torch.log1p(-p))
            return self._from_unit(quantize(u))

    @property
    def mean(self) -> Tensor:
        return self._from_unit(discretized_mean(self.loc, self.log_scale))


class DiscretizedLogistic(Likelihood):
    """x ~ discretized Logistic(μ, s) per element, over the 256 levels of 8-bit data.

    The decoder gives μ (offset so that 0 is mid-range) and log s (at least −7) per element.
    Bins have width 1/255 of the range; the lowest and highest bins are open to ∓∞, so the
    probabilities of the 256 levels sum to 1. Data must be 8-bit values scaled to the range.
    """

    name = "discretized-logistic"
    description = "discretized logistic over 256 levels (8-bit data), edge bins open"
    params_per_channel = 2
    discrete = True

    def forward(self, params: Tensor) -> dist.TorchDistribution:
        loc, log_scale = self.split(params)
        d = DiscretizedLogisticDistribution(0.5 + loc, log_scale.clamp(min=MIN_LOG_SCALE), self.value_range)
        return d.to_event(self.event_dim(loc))

    def check(self, x: Tensor) -> None:
        super().check(x)
        check_8bit(x, self.value_range, self.name)
