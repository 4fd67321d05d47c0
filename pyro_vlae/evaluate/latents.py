"""What each latent layer holds: posterior means, KL per layer, active units, PCA.

Posterior means E_q[z_l | x] are read from the guide trace's site distributions, so any
:class:`~pyro_vlae.models.base.LatentModel` works; for a top-down guide (LVAE, HVAE) they
are the means given the sampled layers above, as the guide defines them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ..data.base import Data
from ..models.base import LatentModel
from .formatting import json_safe
from .results import LayerSummary

#: Burda et al.'s threshold on Cov_x(E_q[z_u]) for an active unit
ACTIVE_THRESHOLD = 0.01


@torch.no_grad()
def posterior_statistics(
    model: LatentModel, data: Data | Tensor | Iterable[Tensor], batch_size: int = 500
) -> dict[str, Any]:
    """Per data point, in eval mode, from one guide trace and the model replayed on it:
    posterior means of every layer ``{"z1": (N, d1), ...}``, the reconstruction term
    log p(x | z) ``(N,)`` and the per-layer KL ``(N, L)`` (:meth:`LatentModel.elbo_terms`,
    analytic where Pyro knows it). ``data``: one tensor, in-memory or streamed data (read
    ``batch_size`` points at a time), or batches of points.
    """
    was_training = model.training
    model.eval()
    means: dict[str, list[Tensor]] = {name: [] for name in model.latent_sites}
    kls, recons = [], []
    try:
        for xb in _batches(data, batch_size):
            xb = xb.to(model.device)
            traces = model.traces(xb)
            for name in model.latent_sites:
                means[name].append(traces[0].nodes[name]["fn"].mean.cpu())
            terms = model.elbo_terms(xb, traces)
            kls.append(terms["kl"].cpu())
            recons.append(terms["recon"].cpu())
    finally:
        model.train(was_training)
    return {
        "means": {name: torch.cat(m) for name, m in means.items()},
        "kl": torch.cat(kls),
        "recon": torch.cat(recons),
    }


def _batches(data: Data | Tensor | Iterable[Tensor], batch_size: int) -> Iterable[Tensor]:
    if torch.is_tensor(data):
        return (data[start : start + batch_size] for start in range(0, data.shape[0], batch_size))
    return data.batches(batch_size) if isinstance(data, Data) else data


def evaluate_elbo(model: LatentModel, data: Data | Tensor, batch_size: int = 500) -> dict[str, Any]:
    """The ELBO (eq. 2) per data point, its reconstruction term and the KL of every layer,
    averaged over ``data`` (:func:`posterior_statistics`)."""
    return elbo_summary(posterior_statistics(model, data, batch_size))


def elbo_summary(stats: dict[str, Any]) -> dict[str, Any]:
    """Means over the data points of :func:`posterior_statistics`: ``elbo``, ``recon`` and
    the per-layer ``kl`` (a list, z1 first)."""
    return {
        "elbo": float((stats["recon"] - stats["kl"].sum(-1)).mean()),
        "recon": float(stats["recon"].mean()),
        "kl": [float(k) for k in stats["kl"].mean(0)],
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


def layer_summary(means: dict[str, Tensor], kl: Tensor) -> dict[str, LayerSummary]:
    """Per layer: KL (nats), KL share, active units, unit activities and PCA spectrum."""
    shares = kl_shares(kl)
    out = {}
    for i, (name, m) in enumerate(means.items()):
        out[name] = LayerSummary(**json_safe({
            "kl": float(kl[:, i].mean()),
            "kl_share": shares[i],
            "units": m.shape[1],
            "active_units": active_units(m),
            "activity": [float(a) for a in unit_activity(m)],
            "pca_explained_variance": pca_explained_variance(m),
        }))
    return out
