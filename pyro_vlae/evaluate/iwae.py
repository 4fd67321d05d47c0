"""Importance-weighted log-likelihood bounds (Burda, Grosse & Salakhutdinov, ICLR 2016).

For K draws z_k ~ q(z | x) the log-weights are log w_k = log p(x, z_k) − log q(z_k | x) and

    IWAE_K = log (1/K) Σ_k w_k  ≤  log p(x)          (Burda et al., eq. 8)

with IWAE_1 = ELBO in expectation and IWAE_K non-decreasing in K (their Theorem 1). The
weights come from the guide trace and the model trace replayed against it, so every
:class:`~pyro_vlae.models.base.LatentModel` is covered without model-specific code.
"""

from __future__ import annotations

import math

import torch
from pyro.poutine.util import site_is_subsample
from torch import Tensor

from ..errors import ConfigError
from ..models.base import LatentModel

#: largest K accepted by :func:`iwae_bound`
MAX_SAMPLES = 5000


def _log_prob_per_point(trace, batch: int) -> Tensor:
    """Σ over sample sites of the unscaled log-density, one value per data point ``(B,)``."""
    total = None
    for site in trace.nodes.values():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        lp = site["fn"].log_prob(site["value"]).reshape(batch, -1).sum(-1)
        total = lp if total is None else total + lp
    return total


@torch.no_grad()
def log_weights(model: LatentModel, x: Tensor, num_samples: int) -> Tensor:
    """log p(x, z_k) − log q(z_k | x) for k = 1..K, shape ``(K, B)``.

    The batch is repeated K times and scored in one pass of guide and model (vectorised over
    samples and data points); call it with a K that fits in memory (see :func:`iwae_bound`).
    """
    batch = x.shape[0]
    x_rep = x.repeat(num_samples, *([1] * (x.dim() - 1)))
    guide_trace, model_trace = model.traces(x_rep)
    log_w = _log_prob_per_point(model_trace, x_rep.shape[0]) - _log_prob_per_point(guide_trace, x_rep.shape[0])
    return log_w.reshape(num_samples, batch)


@torch.no_grad()
def iwae_bound(model: LatentModel, x: Tensor, num_samples: int = 1000, chunk: int = 100) -> dict[str, Tensor]:
    """Per-data-point ``iwae`` = IWAE_K and ``elbo`` = mean log-weight (the Monte-Carlo ELBO
    over the same K draws), each of shape ``(B,)``.

    K is processed ``chunk`` samples at a time with a running log-sum-exp, so memory grows
    with ``chunk × B``, not with K. The model is evaluated in eval mode (batch norm uses its
    running statistics, so repeating a data point does not change its score).
    """
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise ConfigError(
            f"the number of importance samples must be between 1 and {MAX_SAMPLES}, got {num_samples}",
            "pass e.g. --iwae-samples 1000",
        )
    if chunk < 1:
        raise ConfigError(f"the sample chunk must be at least 1, got {chunk}")
    was_training = model.training
    model.eval()
    try:
        x = x.to(model.device)
        lse = torch.full((x.shape[0],), -math.inf, device=model.device)
        total = torch.zeros(x.shape[0], device=model.device)
        done = 0
        while done < num_samples:
            k = min(chunk, num_samples - done)
            log_w = log_weights(model, x, k).to(model.device)
            lse = torch.logaddexp(lse, log_w.logsumexp(0))
            total += log_w.sum(0)
            done += k
    finally:
        model.train(was_training)
    return {"iwae": lse - math.log(num_samples), "elbo": total / num_samples}


def is_8bit(x: Tensor, value_range: tuple[float, float]) -> bool:
    """Whether the data take only the 256 levels low + (high − low)·i/255 of 8-bit images."""
    low, high = value_range
    levels = (x - low) / (high - low) * 255
    return bool(torch.all((levels - levels.round()).abs() < 1e-3))


def bits_per_dim(log_px: float, num_dims: int, value_range: tuple[float, float], discrete: bool = False) -> float:
    """−log₂ p(x) per dimension of 8-bit data.

    ``discrete``: ``log_px`` is already a log-probability mass (a likelihood whose
    :attr:`~pyro_vlae.likelihoods.base.Likelihood.discrete` is true: Bernoulli on {0, 1}, the
    discretized logistic and its mixture on the 256 levels).
    Otherwise it is a density on the data range, and the 256 bins of width (high − low)/256
    turn it into a mass: bpd = (−log p(x) − D log((high − low)/256)) / (D log 2), the usual
    dequantised bound (Theis, van den Oord & Bethge, ICLR 2016, section 3.1).
    """
    low, high = value_range
    nats = -log_px if discrete else -log_px - num_dims * math.log((high - low) / 256)
    return nats / (num_dims * math.log(2))
