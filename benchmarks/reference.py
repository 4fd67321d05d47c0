"""The hand-written baseline: the VLAE's ELBO in plain PyTorch, on the very same networks
and likelihood as the library's model, trained with one ``torch.optim.Adam``.

This is the loop a user would write instead of using Pyro; the benchmark measures the
library's trainer against it. It is not part of the library.
"""

from __future__ import annotations

import math

import pyro
import torch
from torch import Tensor

from pyro_vlae import VLAE

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def elbo_loss(model: VLAE, x: Tensor, num_data: int, beta: Tensor | float) -> Tensor:
    """−ELBO (eq. 2) of a batch scaled to ``num_data``, with a one-sample KL estimate per layer
    (what ``Trace_ELBO`` computes) and β on the KL terms (KL warm-up)::

        z_l = μ_l + σ_l ε_l,  KL_l ≈ log q(z_l | x) − log p(z_l)
        loss = −(N / B) Σ_b [log r(x_b | z_b) − β Σ_l KL_l]
    """
    zs, kl = [], 0.0
    for loc, scale in model.encode(x):
        eps = torch.empty_like(loc).normal_()  # the draw torch.distributions.Normal.rsample makes
        z = loc + scale * eps
        log_q = (-0.5 * eps**2 - scale.log() - HALF_LOG_2PI).sum(-1)
        log_p = (-0.5 * z**2 - HALF_LOG_2PI).sum(-1)
        kl = kl + (log_q - log_p)
        zs.append(z)
    log_lik = model.likelihood(model.decode(zs)).log_prob(x)
    return -(num_data / x.shape[0]) * (log_lik - beta * kl).sum()


class HandwrittenTrainer:
    """One Adam step on :func:`elbo_loss` per call (fused Adam on CUDA, like the library)."""

    def __init__(self, model: VLAE, num_data: int, lr: float = 2e-4, bf16: bool = False) -> None:
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
