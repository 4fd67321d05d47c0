"""Numbers for what a model learned: IWAE bounds, per-layer KL and active units, PCA of
posterior means, per-layer × factor hierarchy metrics, the interventional layer × factor
matrix and the sample fidelity, for any :class:`~pyro_vlae.models.base.LatentModel`."""

from .evaluation import EVALUATION, evaluate, evaluate_run, format_evaluation, load_evaluation
from .fidelity import Fidelity, narrow_factors, sample_fidelity
from .hierarchy import hierarchy_metrics, mig, normalized_mi, ordering_score, probe_score
from .intervention import image_statistics, intervention_effects, intervention_metrics
from .iwae import bits_per_dim, iwae_bound, log_weights
from .latents import (
    active_units,
    elbo_summary,
    evaluate_elbo,
    kl_shares,
    layer_summary,
    pca_explained_variance,
    posterior_statistics,
)
from .reader import MIN_READER_QUALITY, FactorReader, ReaderError, reader_for, train_reader

__all__ = [
    "EVALUATION",
    "MIN_READER_QUALITY",
    "FactorReader",
    "Fidelity",
    "ReaderError",
    "active_units",
    "bits_per_dim",
    "elbo_summary",
    "evaluate",
    "evaluate_elbo",
    "evaluate_run",
    "format_evaluation",
    "hierarchy_metrics",
    "image_statistics",
    "intervention_effects",
    "intervention_metrics",
    "iwae_bound",
    "kl_shares",
    "layer_summary",
    "load_evaluation",
    "log_weights",
    "mig",
    "narrow_factors",
    "normalized_mi",
    "ordering_score",
    "pca_explained_variance",
    "posterior_statistics",
    "probe_score",
    "reader_for",
    "sample_fidelity",
    "train_reader",
]
