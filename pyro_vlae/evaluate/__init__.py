"""Numbers for what a model learned: IWAE bounds, per-layer KL and active units, PCA of
posterior means, per-layer × factor hierarchy metrics, the interventional layer × factor
matrix and the sample fidelity, for any :class:`~pyro_vlae.models.base.LatentModel`.

Computing (:mod:`.evaluation` and the modules of each measure) returns the typed results of
:mod:`.results`; :mod:`.storage` writes and reads ``evaluation.json``, :mod:`.drawing` draws
the pictures, :mod:`.tables` prints the tables and :mod:`.formatting` is where a missing number
becomes ``None`` in JSON and "–" in text."""

from .drawing import draw_evaluation
from .evaluation import evaluate, evaluate_run
from .fidelity import narrow_factors, sample_fidelity
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
from .results import Evaluation, Fidelity, HeatMap, Hierarchy, InterventionMatrix, IwaeResult, LayerSummary, RunInfo
from .storage import EVALUATION, load_evaluation, write_evaluation
from .tables import format_evaluation

__all__ = [
    "EVALUATION",
    "MIN_READER_QUALITY",
    "Evaluation",
    "FactorReader",
    "Fidelity",
    "HeatMap",
    "Hierarchy",
    "InterventionMatrix",
    "IwaeResult",
    "LayerSummary",
    "ReaderError",
    "RunInfo",
    "active_units",
    "bits_per_dim",
    "draw_evaluation",
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
    "write_evaluation",
]
