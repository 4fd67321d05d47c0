"""Which latent layer holds which ground-truth factor, and whether that follows abstraction.

Two layer × factor matrices, each entry in [0, 1]:

* ``probe``: how well a small probe predicts factor k from layer l's posterior means on
  held-out points: R² for continuous factors, chance-corrected accuracy
  (acc − p_major) / (1 − p_major) for categorical ones. This is the *informativeness* of
  Eastwood & Williams, "A framework for the quantitative evaluation of disentangled
  representations" (ICLR 2018), computed per layer with a kernel ridge probe, so a factor
  spread over several units of a layer (or encoded non-linearly, like a hue on a circle)
  still counts.
* ``nmi``: max over the units u of layer l of I(z_u; v_k) / H(v_k), the normalised mutual
  information of MIG (Chen et al., "Isolating sources of disentanglement in VAEs",
  NeurIPS 2018), with posterior means and continuous factors discretised into 20
  equal-width bins as in Locatello et al. (ICML 2019).

:func:`ordering_score` turns a matrix and the factors' abstraction levels into one number
in [−1, 1]: 1 when every more abstract factor sits in a deeper layer, −1 when the order is
reversed, 0 when all factors share one layer or no layer tells anything about them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import DataError
from .formatting import json_safe, rounded
from .results import Hierarchy

#: bins for discretising continuous values (Locatello et al., 2019)
NUM_BINS = 20
#: a factor with at most this many distinct integer values is treated as categorical
MAX_CLASSES = 20


# ------------------------------------------------------------------ mutual information
def discretize(values: np.ndarray, bins: int = NUM_BINS) -> np.ndarray:
    """Column-wise equal-width binning ``(N, C) -> (N, C)`` integer codes; columns that are
    already categorical (few distinct integers) keep their values."""
    out = np.empty(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        col = values[:, j]
        if is_categorical(col):
            out[:, j] = np.unique(col, return_inverse=True)[1]
        else:
            edges = np.histogram_bin_edges(col, bins=bins)
            out[:, j] = np.digitize(col, edges[1:-1])
    return out


def is_categorical(col: np.ndarray) -> bool:
    return bool(np.all(col == np.round(col)) and len(np.unique(col)) <= MAX_CLASSES)


def entropy(a: np.ndarray) -> float:
    """H(a) in nats of a discrete sample."""
    p = np.bincount(a) / len(a)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two discrete samples (plug-in estimate from the contingency table)."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= len(a)
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def normalized_mi(codes: np.ndarray, factors: np.ndarray, bins: int = NUM_BINS) -> np.ndarray:
    """I(z_u; v_k) / H(v_k) for every unit u and factor k, ``(U, F)``."""
    zc, vc = discretize(codes, bins), discretize(factors, bins)
    out = np.zeros((codes.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        h = entropy(vc[:, k])
        for u in range(codes.shape[1]):
            out[u, k] = mutual_information(zc[:, u], vc[:, k]) / h if h > 0 else 0.0
    return out


def mig(nmi: np.ndarray) -> float:
    """Mutual information gap (Chen et al., 2018, eq. 6): the mean over factors of the gap
    between the two units with the highest normalised MI. ``nmi`` is ``(U, F)``, U ≥ 2."""
    if nmi.shape[0] < 2:
        return float("nan")
    top = np.sort(nmi, axis=0)[::-1]
    return float((top[0] - top[1]).mean())


# ------------------------------------------------------------------------- probes
def probe_score(
    code: Tensor, target: Tensor, categorical: bool, circular: bool = False, ridge: float = 1e-2, seed: int = 0
) -> float:
    """Held-out informativeness of ``code`` ``(N, d)`` about one factor ``target`` ``(N,)``.

    The probe is kernel ridge regression with a Gaussian kernel k(a, b) = exp(−‖a − b‖² / 2d)
    on standardised codes (onto one-hot targets for a categorical factor, predicting the
    arg-max), fitted in closed form on 75 % of the points and scored on the rest:
    R² (continuous) or (acc − p_major)/(1 − p_major) (categorical), clipped to [0, 1].
    A ``circular`` factor in [0, 1) (a hue) is predicted as (cos 2πv, sin 2πv), R² averaged.
    """
    n = code.shape[0]
    if n < 8:
        raise DataError(f"probing needs at least 8 data points, got {n}", "evaluate on more test points")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    train, test = perm[: (3 * n) // 4], perm[(3 * n) // 4 :]
    z = code.double()
    z = (z - z[train].mean(0)) / (z[train].std(0) + 1e-8)
    if categorical:
        classes, y = torch.unique(target, return_inverse=True)
        y_train = nn.functional.one_hot(y[train], len(classes)).double()
    else:
        y = target.double()[:, None]
        if circular:
            y = torch.cat([torch.cos(2 * torch.pi * y), torch.sin(2 * torch.pi * y)], dim=1)
        y_train = y[train]
    offset = y_train.mean(0)

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-torch.cdist(a, b).square() / (2 * z.shape[1]))

    k_train = kernel(z[train], z[train])
    alpha = torch.linalg.solve(k_train + ridge * len(train) * torch.eye(len(train), dtype=z.dtype), y_train - offset)
    pred = kernel(z[test], z[train]) @ alpha + offset
    if categorical:
        acc = float((pred.argmax(1) == y[test]).double().mean())
        major = float(torch.bincount(y[test]).max()) / len(test)
        score = (acc - major) / (1 - major) if major < 1 else 0.0
    else:
        var = y[test].var(0, unbiased=False)
        if not bool((var > 0).all()):
            return 0.0
        score = float((1 - ((pred - y[test]) ** 2).mean(0) / var).mean())
    return float(min(1.0, max(0.0, score)))


# ----------------------------------------------------------------------- matrices
def layer_factor_matrices(
    means: Mapping[str, Tensor],
    factors: Tensor,
    circular: Sequence[bool] | None = None,
    max_probe_points: int = 2000,
) -> dict[str, np.ndarray]:
    """``probe`` and ``nmi`` matrices ``(L, F)`` (see the module docstring) and the unit-level
    normalised MI ``unit_nmi`` ``(U, F)`` of all layers' units stacked. ``circular[k]``
    marks a periodic factor in [0, 1); probes use the first ``max_probe_points`` points."""
    f = factors.detach().cpu()
    categorical = [is_categorical(f[:, k].numpy()) for k in range(f.shape[1])]
    circular = list(circular) if circular is not None else [False] * f.shape[1]
    probe = np.zeros((len(means), f.shape[1]))
    nmi = np.zeros_like(probe)
    units = []
    for i, m in enumerate(means.values()):
        m = m.detach().cpu()
        unit_nmi = normalized_mi(m.numpy(), f.numpy())
        units.append(unit_nmi)
        nmi[i] = unit_nmi.max(0)
        for k in range(f.shape[1]):
            probe[i, k] = probe_score(
                m[:max_probe_points], f[:max_probe_points, k], categorical[k], circular[k], seed=k
            )
    return {"probe": probe, "nmi": nmi, "unit_nmi": np.concatenate(units)}


def ordering_score(matrix: np.ndarray, levels: Sequence[int]) -> float:
    """Do more abstract factors sit in deeper layers? A number in [−1, 1].

    Each factor k gets a distribution over layers p_k(l) ∝ M[l, k] (uniform if M[:, k] = 0)
    and a weight c_k = max_l M[l, k] (how well it is captured at all). Over all pairs of
    factors with levels a < b::

        score = mean_{a<b} c_a c_b (P(l_a < l_b) − P(l_a > l_b)),   l_k ~ p_k independently

    A code copying each factor into the layer of its level scores 1, the reverse −1; factors
    sharing one layer, or not captured, contribute 0. NaN when all levels are equal.
    """
    m = np.clip(np.asarray(matrix, dtype=float), 0, None)
    L = m.shape[0]
    sums = m.sum(0, keepdims=True)
    p = np.where(sums > 1e-12, m / np.where(sums > 1e-12, sums, 1), 1.0 / L)
    c = m.max(0)
    below = np.tril(np.ones((L, L)), -1)  # below[i, j] = 1 if i > j
    terms = []
    for a, b in itertools.combinations(range(m.shape[1]), 2):
        if levels[a] == levels[b]:
            continue
        lo, hi = (a, b) if levels[a] < levels[b] else (b, a)
        less = float(p[:, lo] @ below.T @ p[:, hi])  # P(l_lo < l_hi)
        more = float(p[:, lo] @ below @ p[:, hi])  # P(l_lo > l_hi)
        terms.append(c[lo] * c[hi] * (less - more))
    return float(np.mean(terms)) if terms else float("nan")


def per_layer_mig(unit_nmi: np.ndarray, z_dims: Sequence[int]) -> list[float]:
    """MIG computed inside each layer (its units only); NaN for a one-unit layer."""
    bounds = np.cumsum([0, *z_dims])
    return [mig(unit_nmi[bounds[i] : bounds[i + 1]]) for i in range(len(z_dims))]


def hierarchy_metrics(
    means: Mapping[str, Tensor],
    factors: Tensor,
    factor_names: Sequence[str],
    factor_levels: Mapping[str, int],
    circular_factors: Sequence[str] = (),
    max_probe_points: int = 2000,
) -> Hierarchy:
    """Layer × factor matrices (rounded to 4 decimals), MIG overall and per layer, and the
    ordering scores; an undefined number is ``None``.

    Factors without a declared level are measured but left out of the ordering score;
    ``circular_factors`` are periodic in [0, 1) (see :func:`probe_score`).
    """
    if factors.shape[0] != next(iter(means.values())).shape[0]:
        raise DataError("posterior means and factors have different numbers of data points")
    mats = layer_factor_matrices(
        means, factors, [name in circular_factors for name in factor_names], max_probe_points
    )
    ordered = [k for k, name in enumerate(factor_names) if name in factor_levels]
    levels = [factor_levels[factor_names[k]] for k in ordered]
    z_dims = [m.shape[1] for m in means.values()]

    def score(matrix: np.ndarray) -> float:
        return ordering_score(matrix[:, ordered], levels) if ordered else float("nan")

    return Hierarchy(
        layers=list(means),
        factors=list(factor_names),
        factor_levels={factor_names[k]: lv for k, lv in zip(ordered, levels)},
        probe=rounded(mats["probe"]),
        nmi=rounded(mats["nmi"]),
        mig=json_safe(mig(mats["unit_nmi"])),
        mig_per_layer=json_safe(per_layer_mig(mats["unit_nmi"], z_dims)),
        ordering_probe=json_safe(score(mats["probe"])),
        ordering_nmi=json_safe(score(mats["nmi"])),
    )
