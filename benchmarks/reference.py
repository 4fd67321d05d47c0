"""The hand-written baseline: the ELBO of VLAE, HVAE and LVAE in plain PyTorch, on the very
same networks and likelihood as the library's models, trained with one ``torch.optim.Adam``.

This is the loop a user would write instead of using Pyro; the benchmark measures the
library's trainer against it. It is not part of the library.
"""

from __future__ import annotations

import math

import pyro
import torch
from torch import Tensor

from pyro_vlae.models import HVAE, LVAE, VLAE
from pyro_vlae.models.lvae import precision_weighted

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def sample(loc: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """z = μ + σ ε (the draw ``torch.distributions.Normal.rsample`` makes) and log N(z; μ, σ)."""
    eps = torch.empty_like(loc).normal_()
    return loc + scale * eps, (-0.5 * eps**2 - scale.log() - HALF_LOG_2PI).sum(-1)


def log_normal(z: Tensor, loc: Tensor | float = 0.0, scale: Tensor | float = 1.0) -> Tensor:
    """log N(z; μ, σ²) summed over the last dimension."""
    if isinstance(scale, float):
        return (-0.5 * (z - loc) ** 2 - HALF_LOG_2PI).sum(-1)
    return (-0.5 * ((z - loc) / scale) ** 2 - scale.log() - HALF_LOG_2PI).sum(-1)


def elbo_loss(model: VLAE | HVAE | LVAE, x: Tensor, num_data: int, beta: Tensor | float) -> Tensor:
    """−ELBO (eq. 2) of a batch scaled to ``num_data``, with a one-sample KL estimate per layer
    (what ``Trace_ELBO`` computes) and β on the KL terms (KL warm-up)::

        KL ≈ log q(z | x) − log p(z),  z ~ q(z | x) reparameterised
        loss = −(N / B) Σ_b [log r(x_b | z_b) − β KL_b]
    """
    if isinstance(model, VLAE):  # flat prior, ladder of mean-field posteriors (eqs. 8–13)
        zs, log_q, log_p = [], 0.0, 0.0
        for loc, scale in model.encode(x):
            z, lq = sample(loc, scale)
            log_q, log_p = log_q + lq, log_p + log_normal(z)
            zs.append(z)
        params = model.decode(zs)
    elif isinstance(model, HVAE):  # Markov chain both ways (eqs. 3–5), the guide bottom-up
        zs, log_q, h = [], 0.0, x
        for i in range(model.num_layers):
            if i > 0:
                h = model.lift[i - 1](zs[-1])
            z, lq = sample(*model.ladder[i](model.inference[i](h)))
            log_q = log_q + lq
            zs.append(z)
        log_p = log_normal(zs[-1])
        for layer in range(1, model.num_layers):
            log_p = log_p + log_normal(zs[layer - 1], *model.conditional(layer, zs[layer]))
        params = model.decode(zs[0])
    elif isinstance(model, LVAE):  # top-down inference sharing p(z_l | z_{l+1}), computed once
        ladder = model.bottom_up(x)
        z, log_q = sample(*ladder[-1])
        log_p = log_normal(z)
        for i in reversed(range(model.num_layers - 1)):
            prior = model.conditional(i + 1, z)
            z, lq = sample(*precision_weighted(*ladder[i], *prior))
            log_q, log_p = log_q + lq, log_p + log_normal(z, *prior)
        params = model.decode(z)
    else:
        raise TypeError(f"no hand-written ELBO for {type(model).__name__}")
    log_lik = model.likelihood(params).log_prob(x)
    return -(num_data / x.shape[0]) * (log_lik - beta * (log_q - log_p)).sum()


class HandwrittenTrainer:
    """One Adam step on :func:`elbo_loss` per call (fused Adam on CUDA, like the library)."""

    def __init__(self, model: VLAE | HVAE | LVAE, num_data: int, lr: float = 2e-4, bf16: bool = False) -> None:
        self.model = model.train()
        self.num_data = num_data
        self.bf16 = bf16
        cuda = next(model.parameters()).is_cuda
        self.optim = torch.optim.Adam(model.parameters(), lr=lr, fused=True if cuda else None)

    def step(self, x: Tensor, beta: Tensor | float) -> Tensor:
        # argument checks of torch.distributions off, as in the library's hot loop
        with pyro.validation_enabled(False), torch.autocast("cuda", torch.bfloat16, enabled=self.bf16):
            loss = elbo_loss(self.model, x, self.num_data, beta)
        loss.backward()
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)
        return loss.detach() / self.num_data
