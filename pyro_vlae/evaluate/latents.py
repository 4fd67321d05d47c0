"""What each latent layer holds: posterior means, KL per layer, active units, PCA.

Posterior means E_q[z_l | x] are read from the guide trace's site distributions, so any
:class:`~pyro_vlae.models.base.LatentModel` works; for a top-down guide (LVAE, HVAE) they
are the means given the sampled layers above, as the guide defines them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from pyro import poutine
from torch import Tensor

from ..models.base import LatentModel

#: Burda et al.'s threshold on Cov_x(E_q[z_u]) for an active unit
ACTIVE_THRESHOLD = 0.01


@torch.no_grad()
def posterior_statistics(model: LatentModel, x: Tensor | Iterable[Tensor], batch_size: int = 500) -> dict[str, Any]:
    """Posterior means of every layer ``{"z1": (N, d1), ...}`` and the per-point KL ``(N, L)``
    for the points ``x``: one tensor, or its batches (e.g. ``StreamData.batches``).

    KL(q(z_l | ·) ‖ p(z_l | ·)) per layer comes from :meth:`LatentModel.elbo_terms`
    (analytic where Pyro knows it); the model is evaluated in eval mode.
    """
    was_training = model.training
    model.eval()
    means: dict[str, list[Tensor]] = {name: [] for name in model.latent_sites}
    kls, recons = [], []
    try:
        batches = x
        if torch.is_tensor(x):
            batches = (x[start : start + batch_size] for start in range(0, x.shape[0], batch_size))
        for xb in batches:
            xb = xb.to(model.device)
            trace = poutine.trace(model.guide).get_trace(xb)
            for name in model.latent_sites:
                means[name].append(trace.nodes[name]["fn"].mean.cpu())
            terms = model.elbo_terms(xb)
            kls.append(terms["kl"].cpu())
            recons.append(terms["recon"].cpu())
    finally:
        model.train(was_training)
    return {
        "means": {name: torch.cat(m) for name, m in means.items()},
        "kl": torch.cat(kls),
        "recon": torch.cat(recons),
    }


def kl_shares(kl: Tensor) -> list[float]:
    """Each layer's share of the total KL, from per-point KL ``(N, L)`` (sums to 1)."""
    per_layer = kl.mean(0)
    total = float(per_layer.sum())
    if total <= 0:
        return [0.0] * kl.shape[1]
    return [float(k) / total for k in per_layer]


def unit_activity(means: Tensor) -> Tensor:
    """A_u = Cov_x(E_q[z_u | x]) for every unit u of one layer (Burda et al., 2016, section 5.2)."""
    return means.var(0, unbiased=True) if means.shape[0] > 1 else torch.zeros(means.shape[1])


def active_units(means: Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of units with A_u > ``threshold`` (0.01 in Burda et al.)."""
    return int((unit_activity(means) > threshold).sum())


def pca_explained_variance(means: Tensor) -> list[float]:
    """Fractions of the posterior means' variance along their principal axes, largest first
    (the PCA plot of the Ladder-VAE paper, Sønderby et al., 2016, Fig. 4)."""
    centred = means - means.mean(0)
    eig = torch.linalg.eigvalsh(centred.T.double() @ centred.double() / max(1, means.shape[0] - 1))
    eig = eig.flip(0).clamp(min=0)
    total = float(eig.sum())
    return [float(e) / total if total > 0 else 0.0 for e in eig]


def layer_summary(means: dict[str, Tensor], kl: Tensor) -> dict[str, dict[str, Any]]:
    """Per layer: KL (nats), KL share, active units, unit activities and PCA spectrum."""
    shares = kl_shares(kl)
    out = {}
    for i, (name, m) in enumerate(means.items()):
        out[name] = {
            "kl": float(kl[:, i].mean()),
            "kl_share": shares[i],
            "units": m.shape[1],
            "active_units": active_units(m),
            "activity": [float(a) for a in unit_activity(m)],
            "pca_explained_variance": pca_explained_variance(m),
        }
    return out
