"""Sample fidelity: how far the distribution of a model's samples is from the data's, factor
by factor (definitions in ``docs/hierarchy.md``).

N ancestral samples (the likelihood's mean, noise from a generator seeded by ``seed``) and N
real images are read by the same :class:`~pyro_vlae.evaluate.reader.FactorReader` (the data
set's ground-truth factors, when it has one) and by the label-free
:func:`~pyro_vlae.evaluate.intervention.image_statistics`. For each factor:

* ``categorical``: the total variation between the class frequencies,
  TV(p, q) = ½ Σ_c |p_c − q_c|, in [0, 1];
* ``circular`` (a phase in [0, 1), e.g. a hue): the total variation between histograms of
  :data:`BINS` equal bins;
* continuous (a ground-truth factor or an image statistic): the Wasserstein-1 distance of
  the two empirical distributions (the mean absolute difference of their sorted values)
  divided by the real values' standard deviation; averaged over the columns of a statistic
  with several (the colour's channels).

0 is a perfect match. Beside it: the share of samples whose classes the reader reads with
probability ≥ :data:`CONFIDENCE` (and the real images' share), and each factor's *spread*,
the mean change d_k (as in the intervention matrix) between two independent samples and
between two independent real images. A model whose samples spread a factor much less than the
data does (:data:`MIN_SPREAD_RATIO`) makes the intervention matrix's normalisation by its
baseline meaningless for that factor (:func:`narrow_factors`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..data.base import Data
from ..errors import ConfigError
from ..models.base import LatentModel
from .intervention import factor_change, read_factors
from .reader import FactorReader
from .results import BINS, CONFIDENCE, Fidelity, InterventionMatrix

#: below this ratio of the model's independent-sample spread to the data's, a factor is "narrow"
MIN_SPREAD_RATIO = 0.5


def total_variation(a: Tensor, b: Tensor, values: Tensor) -> float:
    """½ Σ_c |p_c − q_c| of the frequencies of ``values`` in ``a`` and ``b`` (1-D)."""
    p = (a[:, None] == values[None]).double().mean(0)
    q = (b[:, None] == values[None]).double().mean(0)
    return 0.5 * float((p - q).abs().sum())


def circular_tv(a: Tensor, b: Tensor, bins: int = BINS) -> float:
    """Total variation between histograms of ``bins`` equal bins of phases in [0, 1)."""
    def hist(v: Tensor) -> Tensor:
        return torch.bincount((v.remainder(1.0) * bins).long().clamp(0, bins - 1), minlength=bins).double() / len(v)

    return 0.5 * float((hist(a) - hist(b)).abs().sum())


def scaled_wasserstein(samples: Tensor, real: Tensor) -> float:
    """Wasserstein-1 between two empirical distributions of equally many values (1-D), over
    the real values' standard deviation; ``nan`` when they do not vary."""
    sd = float(real.double().std())
    if not sd > 0:
        return math.nan
    w1 = (samples.double().sort().values - real.double().sort().values).abs().mean()
    return float(w1) / sd


def factor_distance(samples: Tensor, real: Tensor, kind: str, bins: int = BINS) -> float:
    """The distance of the module docstring between readings ``(N, k)`` of one factor."""
    if kind == "categorical":
        values = torch.unique(torch.cat([samples[:, 0], real[:, 0]]))
        return total_variation(samples[:, 0], real[:, 0], values)
    if kind == "circular":
        return circular_tv(samples[:, 0], real[:, 0], bins)
    return sum(scaled_wasserstein(samples[:, j], real[:, j]) for j in range(real.shape[1])) / real.shape[1]


def spread(readings: Tensor, kind: str, generator: torch.Generator) -> float:
    """Mean change ``d_k`` (:func:`~pyro_vlae.evaluate.intervention.factor_change`) between
    the N readings in a random order and the same order shifted by one: N pairs of distinct
    points, so a data set sorted by class is no bias."""
    order = torch.randperm(readings.shape[0], generator=generator)
    return float(factor_change(readings[order], readings[order.roll(1)], kind).double().mean())


@torch.no_grad()
def generate_samples(model: LatentModel, num: int, *, seed: int = 0, batch_size: int = 250) -> Tensor:
    """``num`` ancestral samples (the likelihood's mean) on the CPU, their noise drawn with a
    generator seeded by ``seed`` (the global random state is not used)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, num, batch_size):
        b = min(batch_size, num - start)
        eps = {s: torch.randn(b, d, generator=g).to(model.device) for s, d in zip(model.latent_sites, model.z_dims)}
        out.append(model.generate(b, noise=eps).cpu())
    return torch.cat(out)


def sample_fidelity(
    model: LatentModel,
    data: Data,
    reader: FactorReader | None = None,
    *,
    num_samples: int = 2000,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
    bins: int = BINS,
    confidence: float = CONFIDENCE,
) -> Fidelity:
    """The :class:`Fidelity` of ``model`` against ``data`` (the module docstring), from
    N = min(``num_samples``, len(``data``)) samples and as many real points, a random subset
    drawn with ``seed``. Factors are the ``reader``'s (if any), then the image statistics of
    images in ``value_range`` (default: the model's likelihood's)."""
    from .evaluation import random_subset

    n = min(num_samples, len(data))
    if n < 2:
        raise ConfigError(f"sample fidelity needs at least 2 samples and 2 data points, got {n}",
                          "pass e.g. --fidelity-samples 2000")
    value_range = value_range or model.likelihood.value_range
    real = data.subset(random_subset(len(data), n, seed)).head()
    samples = generate_samples(model, n, seed=seed)
    read_samples, read_real = read_factors(samples, reader, value_range), read_factors(real, reader, value_range)
    specs = {s.name: s.kind for s in reader.specs} if reader is not None else {}
    kinds = {name: specs.get(name, "statistic") for name in read_real}
    g = torch.Generator().manual_seed(seed)
    confident = reader.confidence(samples) if reader is not None else None
    confident_data = reader.confidence(real) if reader is not None else None
    return Fidelity(
        factors=list(read_real),
        kinds=kinds,
        distance={k: factor_distance(read_samples[k], read_real[k], kind, bins) for k, kind in kinds.items()},
        sample_spread={k: spread(read_samples[k], kind, g) for k, kind in kinds.items()},
        data_spread={k: spread(read_real[k], kind, g) for k, kind in kinds.items()},
        confident=None if confident is None else float((confident >= confidence).double().mean()),
        confident_data=None if confident_data is None else float((confident_data >= confidence).double().mean()),
        num_samples=n,
        bins=bins,
        confidence=confidence,
        seed=seed,
    )


def narrow_factors(
    intervention: InterventionMatrix, fidelity: Fidelity, min_ratio: float = MIN_SPREAD_RATIO
) -> dict[str, float]:
    """Factors whose independent-sample ``baseline`` in the intervention matrix is below
    ``min_ratio`` times the data's own spread (``fidelity.data_spread``), with that ratio:
    the model's samples hardly vary in them, so a normalised entry is a ratio of two small
    numbers."""
    narrow = {}
    for name, base in zip(intervention.factors, intervention.baseline):
        data = fidelity.data_spread.get(name)
        if base is not None and data:
            if base / data < min_ratio:
                narrow[name] = round(base / data, 2)
    return narrow


__all__ = [
    "BINS",
    "CONFIDENCE",
    "MIN_SPREAD_RATIO",
    "Fidelity",
    "circular_tv",
    "factor_distance",
    "generate_samples",
    "narrow_factors",
    "sample_fidelity",
    "scaled_wasserstein",
    "total_variation",
]
