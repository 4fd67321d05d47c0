"""Evaluate a model or a run folder: ELBO, IWAE_K, bits/dim, per-layer KL, active units,
PCA, the interventional layer × factor matrix, the sample fidelity and, for data sets with
ground-truth factors, the hierarchy metrics, as one :class:`~pyro_vlae.evaluate.results.Evaluation`.

:func:`evaluate` works on a model and any :class:`~pyro_vlae.data.Data` (in memory or streamed);
:func:`evaluate_run` loads a run folder, evaluates its test split and writes
``evaluation.json`` (:mod:`~pyro_vlae.evaluate.storage`), ``latents.png`` (KL bars, PCA),
``intervention.png`` and ``hierarchy.png`` (heat maps, :mod:`~pyro_vlae.evaluate.drawing`) there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.base import Data
from ..errors import ConfigError
from ..models.base import LatentModel
from ..progress import Progress, stderr_line
from ..rng import seeded
from ..run_folder import LoadedRun, load_run
from ..train.schedule import LayerFadeIn
from .drawing import draw_evaluation
from .fidelity import narrow_factors, sample_fidelity
from .formatting import json_safe
from .hierarchy import hierarchy_metrics
from .intervention import intervention_metrics
from .iwae import MAX_SAMPLES, bits_per_dim, is_8bit, iwae_bound
from .latents import elbo_summary, layer_summary, posterior_statistics
from .reader import READER_STEPS, FactorReader, ReaderError, reader_for
from .results import Evaluation, Fidelity, InterventionMatrix, IwaeResult, RunInfo
from .storage import write_evaluation


def random_subset(num_data: int, size: int, seed: int) -> Tensor:
    """``size`` distinct indices of ``0 .. num_data − 1`` drawn with a generator seeded by
    ``seed``, sorted; all of them when ``size >= num_data``. Test sets are often sorted (by
    class, say), so the first ``size`` points would be a biased sample."""
    if size >= num_data:
        return torch.arange(num_data)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_data, generator=generator)[:size].sort().values


def evaluate(
    model: LatentModel,
    data: Data,
    *,
    iwae_samples: int = 1000,
    iwae_points: int = 500,
    chunk: int = 5000,
    value_range: tuple[float, float] | None = None,
    factor_levels: Mapping[str, int] | None = None,
    circular_factors: Sequence[str] = (),
    intervention: bool = True,
    intervention_samples: int = 1000,
    fidelity_samples: int = 2000,
    reader: FactorReader | None = None,
    progress: bool = False,
    seed: int = 0,
) -> Evaluation:
    """All numbers for ``model`` on ``data`` (per data point, nats), in memory or streamed.

    * ``elbo``, ``recon``: the ELBO (analytic KL where available) over all points.
    * ``iwae``: IWAE_K with K = ``iwae_samples`` on a random subset of ``iwae_points`` points
      (:func:`random_subset`, seeded by ``seed``; all points when there are no more), beside
      the ELBO of the same points (``elbo``) and the Monte-Carlo ELBO of the same draws;
      ``chunk`` bounds the rows (samples × points) scored at once. ``bits_per_dim`` from
      IWAE_K when the data are 8-bit or binary (in ``value_range``, by default the model's
      likelihood's).
    * ``layers``: per-layer KL, KL share, active units, PCA (:func:`layer_summary`).
    * ``hierarchy`` when ``data.factors`` is set (:func:`hierarchy_metrics`).
    * ``intervention`` unless ``intervention`` is false: the interventional layer × factor
      matrix over ``intervention_samples`` pairs (:func:`intervention_metrics`, its own
      noise seeded with 0), with the factors read by ``reader`` and the label-free image
      statistics. A reader below :data:`~pyro_vlae.evaluate.reader.MIN_READER_QUALITY` is
      refused: the matrix then holds the statistics only and ``reader_refused`` says why.
    * ``fidelity`` unless ``fidelity_samples`` is 0: the distance between the factors of
      that many samples and of as many points of ``data``
      (:func:`~pyro_vlae.evaluate.fidelity.sample_fidelity`, read by the same reader, or by
      the image statistics alone when it is refused); with the intervention matrix,
      ``intervention.narrow`` names the factors whose baseline is small against the data's
      own spread (:func:`~pyro_vlae.evaluate.fidelity.narrow_factors`).

    Every random draw comes from a random state seeded by ``seed`` (the caller's is left as
    it was), so an evaluation repeats exactly.
    """
    _check_pairs(intervention, intervention_samples)
    _check_fidelity(fidelity_samples)
    value_range = value_range or model.likelihood.value_range
    with seeded(seed, model.device):
        evaluation = _measure_latents(
            model, data, iwae_samples=iwae_samples, iwae_points=iwae_points, chunk=chunk, value_range=value_range,
            factor_levels=factor_levels, circular_factors=circular_factors, progress=progress, seed=seed,
        )
        _measure_samples(evaluation, model, data, reader, pairs=intervention_samples if intervention else 0,
                         samples=fidelity_samples, factor_levels=factor_levels, value_range=value_range,
                         progress=progress, seed=seed)
    return evaluation


def _check_pairs(intervention: bool, pairs: int) -> None:
    if intervention and pairs < 2:
        raise ConfigError(f"the intervention matrix needs at least 2 pairs, got {pairs}",
                          "pass e.g. --intervention-samples 1000")


def _check_fidelity(samples: int) -> None:
    if samples == 1 or samples < 0:
        raise ConfigError(f"sample fidelity needs at least 2 samples (0: not measured), got {samples}",
                          "pass e.g. --fidelity-samples 2000")


def _check_iwae(iwae_samples: int, iwae_points: int, chunk: int) -> None:
    if not 1 <= iwae_samples <= MAX_SAMPLES:
        raise ConfigError(
            f"the number of importance samples must be between 1 and {MAX_SAMPLES}, got {iwae_samples}",
            "pass e.g. --iwae-samples 1000",
        )
    if iwae_points < 1 or chunk < 1:
        raise ConfigError("the number of IWAE points and the chunk size must be at least 1")


def _measure_samples(
    evaluation: Evaluation, model: LatentModel, data: Data, reader: FactorReader | None, *, pairs: int,
    samples: int, factor_levels: Mapping[str, int] | None, value_range: tuple[float, float] | None,
    progress: bool, seed: int,
) -> None:
    """Add to ``evaluation`` what the model's samples show: the intervention matrix over
    ``pairs`` pairs and the sample fidelity of ``samples`` samples (neither for 0), and mark
    the matrix's narrow factors."""
    if pairs:
        evaluation.intervention = _intervention(model, reader, factor_levels=factor_levels, num_pairs=pairs,
                                                value_range=value_range, progress=progress)
    if samples:
        evaluation.fidelity = _fidelity(model, data, reader, samples, seed=seed, value_range=value_range)
        if evaluation.intervention is not None:
            evaluation.intervention.narrow = narrow_factors(evaluation.intervention, evaluation.fidelity)


def _fidelity(model: LatentModel, data: Data, reader: FactorReader | None, samples: int, **options: Any) -> Fidelity:
    """:func:`sample_fidelity`, read by ``reader`` unless it is refused, with its numbers as
    ``evaluation.json`` holds them (rounded, NaN as ``None``)."""
    try:
        if reader is not None:
            reader.check()
    except ReaderError:
        reader = None
    return Fidelity.from_json(sample_fidelity(model, data, reader, num_samples=samples, **options).to_json())


def _intervention(model: LatentModel, reader: FactorReader | None, **options: Any) -> InterventionMatrix:
    """:func:`intervention_metrics`; a refused reader is replaced by the image statistics
    alone and the refusal kept as ``reader_refused``."""
    try:
        return intervention_metrics(model, reader, **options)
    except ReaderError as err:
        return replace(intervention_metrics(model, None, **options), reader_refused=str(err))


def _measure_latents(
    model: LatentModel, data: Data, *, iwae_samples: int, iwae_points: int, chunk: int,
    value_range: tuple[float, float], factor_levels: Mapping[str, int] | None, circular_factors: Sequence[str],
    progress: bool, seed: int,
) -> Evaluation:
    """What the posterior shows: ELBO, IWAE, bits/dim, the layers' summaries and, with
    factors, the hierarchy metrics (the items of :func:`evaluate`)."""
    _check_iwae(iwae_samples, iwae_points, chunk)
    data = data.subset()  # the points as stored, without a training transform
    stats = posterior_statistics(model, data)
    summary = elbo_summary(stats)
    chosen = random_subset(len(data), iwae_points, seed)
    x = data.subset(chosen).head()
    value, same_draws = _iwae(model, x, iwae_samples, chunk, progress)
    iwae = IwaeResult(
        samples=iwae_samples, num_points=x.shape[0],
        points="all" if x.shape[0] == len(data) else f"random subset, seed {seed}",
        value=json_safe(value), elbo=json_safe(float((stats["recon"] - stats["kl"].sum(-1))[chosen].mean())),
        elbo_same_draws=json_safe(same_draws),
    )
    evaluation = Evaluation(num_points=len(data), elbo=json_safe(summary["elbo"]), recon=json_safe(summary["recon"]),
                            iwae=iwae, layers=layer_summary(stats["means"], stats["kl"]))
    discrete = model.likelihood.discrete  # log p(x) is already a mass: no bin width to add
    if discrete or is_8bit(x, value_range):
        evaluation.bits_per_dim = json_safe(bits_per_dim(value, math.prod(data.shape), value_range, discrete))
    if data.factors is not None:
        evaluation.hierarchy = hierarchy_metrics(
            stats["means"], data.factors, data.factor_names, factor_levels or {}, circular_factors
        )
    return evaluation


def _iwae(model: LatentModel, x: Tensor, samples: int, chunk: int, progress: bool) -> tuple[float, float]:
    """IWAE_K with K = ``samples`` and the Monte-Carlo ELBO of the same draws, averaged over
    the points ``x``, scoring at most ``chunk`` rows (samples × points) at once."""
    points = max(1, chunk // samples)  # data points per pass; samples split into chunks if K > chunk
    iwae, elbo = [], []
    with Progress(x.shape[0], progress, stderr_line, unit="point", prefix=f"IWAE-{samples}",
                  desc=f"IWAE-{samples}", what=f"IWAE-{samples}",
                  advice=lambda rate: f"--iwae-points {max(1, int(rate * 600))} takes about 10 min here "
                  f"(or fewer --iwae-samples)") as bar:
        for start in range(0, x.shape[0], points):
            out = iwae_bound(model, x[start : start + points], samples, chunk=min(chunk, samples))
            iwae.append(out["iwae"].cpu())
            elbo.append(out["elbo"].cpu())
            bar.advance(min(points, x.shape[0] - start))
    return float(torch.cat(iwae).mean()), float(torch.cat(elbo).mean())


def evaluate_run(
    path: str | Path,
    *,
    iwae_samples: int = 1000,
    iwae_points: int = 500,
    chunk: int = 5000,
    num_points: int | None = None,
    device: str = "cpu",
    intervention: bool = True,
    intervention_samples: int = 1000,
    fidelity_samples: int = 2000,
    reader_steps: int = READER_STEPS,
    progress: bool = True,
    seed: int = 0,
) -> Evaluation:
    """Evaluate a run folder on its test split (the training split when there is none), or
    on a random subset of ``num_points`` of its points (:func:`random_subset`, seeded by
    ``seed``); writes ``evaluation.json``, ``latents.png``, ``intervention.png`` and, with
    factors, ``hierarchy.png`` into the folder; ``fidelity_samples`` samples measure the
    sample fidelity (0: not measured); ``fade_in`` records the VLAE's fade-in at the run's
    last step (:meth:`~pyro_vlae.train.LayerFadeIn.state`). The same ``seed`` gives the same numbers.
    The data set's factor reader is trained for ``reader_steps`` on first use and cached
    (:func:`~pyro_vlae.evaluate.reader.reader_for`)."""
    _check_pairs(intervention, intervention_samples)
    _check_fidelity(fidelity_samples)
    run = load_run(path, device=device)
    split, data = _run_data(run, num_points, seed)
    evaluation = evaluate(run.model, data, iwae_samples=iwae_samples, iwae_points=iwae_points, chunk=chunk,
                          factor_levels=run.plugin.factor_levels, circular_factors=run.plugin.circular_factors,
                          intervention=False, fidelity_samples=0, progress=progress, seed=seed)
    evaluation.run = RunInfo(run=str(run.path), model=run.config.model, plugin=run.config.plugin,
                             z_dims=list(run.model.z_dims), seed=run.config.seed, step=run.step, split=split,
                             evaluation_seed=seed)
    if run.config.fade_in:  # the VLAE's fade-in: which layers the decoder was allowed to use
        evaluation.fade_in = LayerFadeIn(run.config.fade_in).state(run.step, run.model.num_layers)
    if intervention or fidelity_samples:  # after the rest, so that bad options fail before the reader is trained
        reader = reader_for(run.plugin, run.config.plugin_options, steps=reader_steps, device=run.model.device,
                            progress=progress)
        _measure_samples(evaluation, run.model, data, reader, pairs=intervention_samples if intervention else 0,
                         samples=fidelity_samples, factor_levels=run.plugin.factor_levels, value_range=None,
                         progress=progress, seed=seed)
    draw_evaluation(evaluation, run.path)
    write_evaluation(run.path, evaluation)  # last: the pictures of a run's evaluation.json are written
    return evaluation


def _run_data(run: LoadedRun, num_points: int | None, seed: int) -> tuple[str, Data]:
    """The split a run folder is evaluated on (its test split, else its training split) and
    its points, or a random subset of ``num_points`` of them."""
    from ..plugins import load_data

    split = "test" if "test" in run.plugin.splits else "train"
    data = load_data(run.plugin, split)
    if num_points is not None:
        if num_points < 8:
            raise ConfigError(f"--num-points must be at least 8, got {num_points}")
        data = data.subset(random_subset(len(data), num_points, seed))
    return split, data
