"""Numbers for what a model learned: IWAE bounds, per-layer KL and active units, PCA of
posterior means, per-layer × factor hierarchy metrics and the interventional layer × factor
matrix, for any :class:`~pyro_vlae.models.base.LatentModel`."""

from .evaluation import EVALUATION, evaluate, evaluate_run, format_evaluation, load_evaluation
from .hierarchy import hierarchy_metrics, mig, normalized_mi, ordering_score, probe_score
from .intervention import image_statistics, intervention_effects, intervention_metrics
from .iwae import bits_per_dim, iwae_bound, log_weights
from .latents import active_units, kl_shares, layer_summary, pca_explained_variance, posterior_statistics
from .reader import MIN_READER_QUALITY, FactorReader, ReaderError, reader_for, train_reader

__all__ = [
    "EVALUATION",
    "MIN_READER_QUALITY",
    "FactorReader",
    "ReaderError",
    "active_units",
    "bits_per_dim",
    "evaluate",
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
    "normalized_mi",
    "ordering_score",
    "pca_explained_variance",
    "posterior_statistics",
    "probe_score",
    "reader_for",
    "train_reader",
]
