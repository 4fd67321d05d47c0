"""Mixture of discretized logistics with per-channel means (Salimans et al., PixelCNN++, 2017, sec. 2.2)."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor
from torch.nn import functional as F

from ..errors import ConfigError
from .base import Likelihood
from .discretized_logistic import (
    MIN_LOG_SCALE,
    check_8bit,
    discretized_mean,
    log_bin_mass,
    quantize,
)


def num_coeffs(channels: int) -> int:
    """Linear coefficients per component: channel c depends on channels 0..c−1."""
    return channels * (channels - 1) // 2


class DiscretizedLogisticMixtureDistribution(dist.TorchDistribution):
    """p(x) = Π_pixels Σ_k π_k Π_c DLogistic(u_c; μ_kc + Σ_{j<c} α_kcj u_j, s_kc) over (C, H, W) images.

    Parameters are in [0, 1] units (0 = ``low``, 1 = ``high``) and shaped ``(B, K, H, W)``
    (``logits``), ``(B, K, C, H, W)`` (``loc``, ``log_scale``) and ``(B, K, C(C−1)/2, H, W)``
    (``coeffs``). Batch shape ``(B,)``, event shape ``(C, H, W)``.
    """

    arg_constraints = {
        "logits": constraints.real,
        "loc": constraints.real,
        "log_scale": constraints.real,
        "coeffs": constraints.interval(-1.0, 1.0),
    }
    has_rsample = False

    def __init__(self, logits, loc, log_scale, coeffs, value_range=(0.0, 1.0), validate_args=None):
        self.logits, self.loc, self.log_scale, self.coeffs = logits, loc, log_scale, coeffs
        self.value_range = (float(value_range[0]), float(value_range[1]))
        channels = loc.shape[-3]
        super().__init__(
            loc.shape[:-4], torch.Size((channels, *loc.shape[-2:])), validate_args=validate_args
        )

    @constraints.dependent_property
    def support(self):
        return constraints.independent(constraints.interval(*self.value_range), 3)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        tail = lambda t: t.expand(shape + t.shape[len(self.batch_shape):])  # noqa: E731
        return type(self)(tail(self.logits), tail(self.loc), tail(self.log_scale), tail(self.coeffs),
                          self.value_range)

    def _means(self, u: Tensor) -> Tensor:
        """Channel means μ_kc + Σ_{j<c} α_kcj u_j given the channel values ``u`` (B, 1, C, H, W)."""
        means = [self.loc[..., 0, :, :]]
        for c in range(1, self.loc.shape[-3]):
            start = num_coeffs(c)
            shift = (self.coeffs[..., start : start + c, :, :] * u[..., :c, :, :]).sum(-3)
            means.append(self.loc[..., c, :, :] + shift)
        return torch.stack(torch.broadcast_tensors(*means), dim=-3)

    def log_prob(self, value: Tensor) -> Tensor:
        low, high = self.value_range
        u = quantize((value - low) / (high - low)).unsqueeze(-4)  # (B, 1, C, H, W)
        per_component = log_bin_mass(u, self._means(u), self.log_scale).sum(-3)  # (B, K, H, W)
        log_mix = torch.logsumexp(F.log_softmax(self.logits, dim=-3) + per_component, dim=-3)
        return log_mix.sum((-2, -1))

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        if sample_shape:
            return torch.stack([self.sample() for _ in range(torch.Size(sample_shape).numel())]).reshape(
                self._extended_shape(torch.Size(sample_shape))
            )
        with torch.no_grad():
            k = dist.Categorical(logits=self.logits.movedim(-3, -1)).sample().unsqueeze(-3)  # (B, 1, H, W)
            pick = lambda t: t.gather(-4, k.unsqueeze(-4).expand(*t.shape[:-4], 1, *t.shape[-3:])).squeeze(-4)  # noqa: E731
            loc, log_scale, coeffs = pick(self.loc), pick(self.log_scale), pick(self.coeffs)
            channels = []
            for c in range(loc.shape[-3]):
                start = num_coeffs(c)
                mean = loc[..., c, :, :]
                for j in range(c):
                    mean = mean + coeffs[..., start + j, :, :] * channels[j]
                p = torch.rand_like(mean).clamp(1e-5, 1 - 1e-5)
                channels.append(quantize(mean + log_scale[..., c, :, :].exp() * (torch.log(p) - torch.log1p(-p))))
            low, high = self.value_range
            return low + (high - low) * torch.stack(channels, dim=-3)

    @property
    def mean(self) -> Tensor:
        """Σ_k π_k m_k, m_kc the discretized mean of component k's channel c with the earlier
        channels at their component means (exact for one channel, a close approximation for more)."""
        means = []
        for c in range(self.loc.shape[-3]):
            start = num_coeffs(c)
            loc = self.loc[..., c, :, :]
            for j in range(c):
                loc = loc + self.coeffs[..., start + j, :, :] * means[j]
            means.append(discretized_mean(loc, self.log_scale[..., c, :, :]))
        weights = F.softmax(self.logits, dim=-3).unsqueeze(-3)
        low, high = self.value_range
        return low + (high - low) * (weights * torch.stack(means, dim=-3)).sum(-4)


class DiscretizedLogisticMixture(Likelihood):
    """A mixture of ``components`` discretized logistics per pixel, PixelCNN++-style: channel c's
    mean is shifted linearly by the values of channels 0..c−1 (coefficients tanh-squashed).

    :param components: K, the number of mixture components (PixelCNN++ and NVAE use 10).
    """

    name = "discretized-logistic-mixture"
    description = "mixture of K discretized logistics per pixel, PixelCNN++ channel means (8-bit images)"
    discrete = True

    def __init__(self, components: int = 10, value_range: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__(value_range)
        if int(components) < 1:
            raise ConfigError(f"components must be at least 1, got {components}", "pass e.g. -L components=10")
        self.components = int(components)
        self.channels: int | None = None

    def num_params(self, channels: int) -> int:
        return self.components * (1 + 2 * channels + num_coeffs(channels))

    def bind(self, x_shape: tuple[int, ...]) -> None:
        if len(x_shape) != 3:
            raise ConfigError(
                f"the {self.name} likelihood needs images (C, H, W), got data of shape {x_shape}",
                "use --likelihood discretized-logistic for flat data",
            )
        super().bind(x_shape)
        self.channels = x_shape[0]

    def forward(self, params: Tensor) -> dist.TorchDistribution:
        K, C = self.components, self.channels
        *batch, _, H, W = params.shape  # batch: (B,) or more leading dimensions
        logits, loc, log_scale, coeffs = params.split([K, K * C, K * C, K * num_coeffs(C)], dim=-3)
        return DiscretizedLogisticMixtureDistribution(
            logits,
            0.5 + loc.reshape(*batch, K, C, H, W),
            log_scale.reshape(*batch, K, C, H, W).clamp(min=MIN_LOG_SCALE),
            torch.tanh(coeffs.reshape(*batch, K, num_coeffs(C), H, W)),
            self.value_range,
        )

    def check(self, x: Tensor) -> None:
        super().check(x)
        check_8bit(x, self.value_range, self.name)

    def extra_repr(self) -> str:
        return f"components={self.components}, " + super().extra_repr()
