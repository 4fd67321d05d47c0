"""Evaluate a model or a run folder: ELBO, IWAE_K, bits/dim, per-layer KL, active units,
PCA, the interventional layer × factor matrix and, for data sets with ground-truth factors,
the hierarchy metrics.

:func:`evaluate` works on a model and any :class:`~pyro_vlae.data.Data` (in memory or streamed);
:func:`evaluate_run` loads a run folder, evaluates its test split and writes
``evaluation.json``, ``latents.png`` (KL bars, PCA), ``intervention.png`` and
``hierarchy.png`` (heat maps) there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.base import Data
from ..errors import ConfigError
from ..models.base import LatentModel
from ..plotting import plot_layers, plot_matrix
from ..progress import Progress, stderr_line
from ..rng import seeded
from ..run_folder import EVALUATION, HIERARCHY, INTERVENTION, LATENTS, load_run, write_json
from ..train.schedule import LayerFadeIn
from .fidelity import format_fidelity, narrow_factors, sample_fidelity
from .hierarchy import hierarchy_metrics
from .intervention import format_intervention, intervention_metrics
from .iwae import MAX_SAMPLES, bits_per_dim, is_8bit, iwae_bound
from .latents import elbo_summary, layer_summary, posterior_statistics
from .reader import READER_STEPS, FactorReader, ReaderError, reader_for


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


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
) -> dict[str, Any]:
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
        results = _evaluate(
            model, data, iwae_samples=iwae_samples, iwae_points=iwae_points, chunk=chunk, value_range=value_range,
            factor_levels=factor_levels, circular_factors=circular_factors, progress=progress, seed=seed,
        )
        if intervention:
            results["intervention"] = _intervention(
                model, reader, factor_levels=factor_levels, num_pairs=intervention_samples,
                value_range=value_range, progress=progress,
            )
        _fidelity(results, model, data, reader, fidelity_samples, seed=seed, value_range=value_range)
    return results


def _check_pairs(intervention: bool, pairs: int) -> None:
    if intervention and pairs < 2:
        raise ConfigError(f"the intervention matrix needs at least 2 pairs, got {pairs}",
                          "pass e.g. --intervention-samples 1000")


def _check_fidelity(samples: int) -> None:
    if samples == 1 or samples < 0:
        raise ConfigError(f"sample fidelity needs at least 2 samples (0: not measured), got {samples}",
                          "pass e.g. --fidelity-samples 2000")


def _fidelity(results: dict[str, Any], model: LatentModel, data: Data, reader: FactorReader | None,
              samples: int, **options: Any) -> None:
    """Add ``fidelity`` to ``results`` (nothing for 0 ``samples``), read by ``reader`` unless it
    is refused, and mark the intervention matrix's narrow factors."""
    if samples == 0:
        return
    try:
        if reader is not None:
            reader.check()
    except ReaderError:
        reader = None
    fidelity = sample_fidelity(model, data, reader, num_samples=samples, **options).to_dict()
    results["fidelity"] = _clean(fidelity)
    if results.get("intervention"):
        results["intervention"]["narrow"] = narrow_factors(results["intervention"], fidelity)


def _intervention(model: LatentModel, reader: FactorReader | None, **options: Any) -> dict[str, Any]:
    """:func:`intervention_metrics`, JSON-safe; a refused reader is replaced by the image
    statistics alone and the refusal kept as ``reader_refused`` (shown by
    :func:`format_evaluation`)."""
    try:
        return _clean(intervention_metrics(model, reader, **options))
    except ReaderError as err:
        return _clean({**intervention_metrics(model, None, **options), "reader_refused": str(err)})


def _evaluate(
    model: LatentModel,
    data: Data,
    *,
    iwae_samples: int,
    iwae_points: int,
    chunk: int,
    value_range: tuple[float, float] | None,
    factor_levels: Mapping[str, int] | None,
    circular_factors: Sequence[str],
    progress: bool,
    seed: int,
) -> dict[str, Any]:
    if not 1 <= iwae_samples <= MAX_SAMPLES:
        raise ConfigError(
            f"the number of importance samples must be between 1 and {MAX_SAMPLES}, got {iwae_samples}",
            "pass e.g. --iwae-samples 1000",
        )
    if iwae_points < 1 or chunk < 1:
        raise ConfigError("the number of IWAE points and the chunk size must be at least 1")
    value_range = value_range or model.likelihood.value_range
    data = data.subset()  # the points as stored, without a training transform
    stats = posterior_statistics(model, data)
    summary = elbo_summary(stats)
    results: dict[str, Any] = {"num_points": len(data), "elbo": summary["elbo"], "recon": summary["recon"]}
    elbo_per_point = stats["recon"] - stats["kl"].sum(-1)

    chosen = random_subset(len(data), iwae_points, seed)
    x = data.subset(chosen).head()
    points = max(1, chunk // iwae_samples)  # data points per pass; samples split into chunks if K > chunk
    iwae, elbo = [], []
    with Progress(x.shape[0], progress, stderr_line, unit="point", prefix=f"IWAE-{iwae_samples}",
                  desc=f"IWAE-{iwae_samples}", what=f"IWAE-{iwae_samples}",
                  advice=lambda rate: f"--iwae-points {max(1, int(rate * 600))} takes about 10 min here "
                  f"(or fewer --iwae-samples)") as bar:
        for start in range(0, x.shape[0], points):
            out = iwae_bound(model, x[start : start + points], iwae_samples, chunk=min(chunk, iwae_samples))
            iwae.append(out["iwae"].cpu())
            elbo.append(out["elbo"].cpu())
            bar.advance(min(points, x.shape[0] - start))
    iwae_value = float(torch.cat(iwae).mean())
    results["iwae"] = {
        "samples": iwae_samples,
        "num_points": x.shape[0],
        "points": "all" if x.shape[0] == len(data) else f"random subset, seed {seed}",
        "value": iwae_value,
        "elbo": float(elbo_per_point[chosen].mean()),
        "elbo_same_draws": float(torch.cat(elbo).mean()),
    }
    discrete = model.likelihood.discrete  # log p(x) is already a mass: no bin width to add
    if discrete or is_8bit(x, value_range):
        results["bits_per_dim"] = bits_per_dim(iwae_value, math.prod(data.shape), value_range, discrete)

    results["layers"] = layer_summary(stats["means"], stats["kl"])
    if data.factors is not None:
        results["hierarchy"] = hierarchy_metrics(
            stats["means"], data.factors, data.factor_names, factor_levels or {}, circular_factors
        )
    return _clean(results)


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
) -> dict[str, Any]:
    """Evaluate a run folder on its test split (the training split when there is none), or
    on a random subset of ``num_points`` of its points (:func:`random_subset`, seeded by
    ``seed``); writes ``evaluation.json``, ``latents.png``, ``intervention.png`` and, with
    factors, ``hierarchy.png`` into the folder; ``fidelity_samples`` samples measure the
    sample fidelity (0: not measured); ``fade_in`` records the VLAE's fade-in at the run's
    last step (:meth:`~pyro_vlae.train.LayerFadeIn.state`). The same ``seed`` gives the same numbers.
    The data set's factor reader is trained for ``reader_steps`` on first use and cached
    (:func:`~pyro_vlae.evaluate.reader.reader_for`)."""
    from ..plugins import load_data

    _check_pairs(intervention, intervention_samples)
    _check_fidelity(fidelity_samples)
    run = load_run(path, device=device)
    split = "test" if "test" in run.plugin.splits else "train"
    data = load_data(run.plugin, split)
    if num_points is not None:
        if num_points < 8:
            raise ConfigError(f"--num-points must be at least 8, got {num_points}")
        data = data.subset(random_subset(len(data), num_points, seed))
    results = {
        "run": str(run.path),
        "model": run.config.model,
        "plugin": run.config.plugin,
        "z_dims": list(run.model.z_dims),
        "seed": run.config.seed,
        "step": run.step,
        "split": split,
        "evaluation_seed": seed,
        **evaluate(
            run.model,
            data,
            iwae_samples=iwae_samples,
            iwae_points=iwae_points,
            chunk=chunk,
            factor_levels=run.plugin.factor_levels,
            circular_factors=run.plugin.circular_factors,
            intervention=False,
            fidelity_samples=0,
            progress=progress,
            seed=seed,
        ),
    }
    if run.config.fade_in:  # the VLAE's fade-in: which layers the decoder was allowed to use
        results["fade_in"] = LayerFadeIn(run.config.fade_in).state(run.step, run.model.num_layers)
    if intervention or fidelity_samples:  # after the rest, so that bad options fail before the reader is trained
        reader = reader_for(run.plugin, run.config.plugin_options, steps=reader_steps, device=run.model.device,
                            progress=progress)
        if intervention:
            results["intervention"] = _intervention(
                run.model, reader, factor_levels=run.plugin.factor_levels, num_pairs=intervention_samples,
                progress=progress,
            )
        _fidelity(results, run.model, data, reader, fidelity_samples, seed=seed)
    plot_layers(results["layers"], run.path / LATENTS)
    if "hierarchy" in results:
        plot_matrix(results["hierarchy"], run.path / HIERARCHY)
    if "intervention" in results:
        plot_matrix(results["intervention"], run.path / INTERVENTION, key="intervention")
    write_json(run.path / EVALUATION, results)  # last: the pictures of a run's evaluation.json are written
    return results


def load_evaluation(path: str | Path) -> dict[str, Any]:
    """The ``evaluation.json`` of a run folder."""
    from ..errors import CheckpointError

    file = Path(path) / EVALUATION
    if not file.exists():
        raise CheckpointError(f"{path} has no {EVALUATION}", f"run `pyro-vlae evaluate {path}` first")
    try:
        results = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file} is corrupt ({err})", f"re-run `pyro-vlae evaluate {path}`") from err
    if not isinstance(results, dict) or not {"elbo", "iwae", "layers"} <= results.keys():
        raise CheckpointError(f"{file} is not an evaluation written by `pyro-vlae evaluate`",
                              f"re-run `pyro-vlae evaluate {path}`")
    return results


#: why an ordering score is missing (:func:`~pyro_vlae.evaluate.hierarchy.ordering_score` is undefined)
NO_ORDERING = "undefined: the data set gives no two factors different abstraction levels"


def _fmt(value: Any, digits: int = 2, why: str | None = None) -> str:
    """``value`` with ``digits`` decimals; a missing one is "–", followed by ``why`` when given."""
    if value is None:
        return "–" if why is None else f"– ({why})"
    return f"{value:.{digits}f}"


def _fade_in_notes(results: Mapping[str, Any]) -> list[str]:
    """A note for each layer the fade-in had not fully switched on by the run's last step."""
    fade = results.get("fade_in")
    if not fade:
        return []
    notes = []
    for (name, info), gate, full in zip(results["layers"].items(), fade["gates"], fade["fully_on_at"]):
        if gate < 1:
            state = "never switched on" if gate == 0 else f"never fully on (gate {gate:.2f} in its last step)"
            notes.append(f"  note: {name} was {state}: the fade-in opens it fully at step {full}, the run stopped at "
                         f"{fade['steps']}; its KL of {info['kl']:.2f} nats is that of a path the decoder was kept "
                         "from using, not what the layer learns")
    return notes


def format_evaluation(results: Mapping[str, Any]) -> str:
    """A plain-text table of an evaluation."""
    iw = results["iwae"]
    lines = [
        f"{results.get('model', 'model')} on {results.get('plugin', 'data')} ({results.get('split', '')}, "
        f"{results['num_points']} points)",
        f"  ELBO            {results['elbo']:10.2f} nats   (reconstruction {results['recon']:.2f})",
        f"  IWAE-{iw['samples']:<10d} {iw['value']:10.2f} nats   (on {iw['num_points']} points, "
        f"{iw.get('points', 'the first')}; ELBO of the same points {_fmt(iw.get('elbo'))}, "
        f"of the same draws {iw['elbo_same_draws']:.2f})",
    ]
    if "bits_per_dim" in results:
        lines.append(f"  bits/dim        {results['bits_per_dim']:10.4f}")
    lines.append(f"  {'layer':<6} {'KL':>8} {'share':>6} {'active':>7}  PCA explained variance")
    for name, info in results["layers"].items():
        pca = " ".join(f"{v:.2f}" for v in info["pca_explained_variance"])
        lines.append(f"  {name:<6} {info['kl']:8.2f} {100 * info['kl_share']:5.0f}% "
                     f"{info['active_units']:>3}/{info['units']:<3}  {pca}")
    lines += _fade_in_notes(results)
    h = results.get("hierarchy")
    if h:
        lines.append("  layer × factor (probe informativeness; normalised MI in brackets)")
        lines.append("  " + " " * 6 + "".join(f"{f:>14}" for f in h["factors"]))
        for i, name in enumerate(h["layers"]):
            cells = "".join(f"{_fmt(p):>7} ({_fmt(n)})" for p, n in zip(h["probe"][i], h["nmi"][i]))
            mig = h["mig_per_layer"][i]
            lines.append(f"  {name:<6}{cells}   MIG {_fmt(mig, why='a one-unit layer has no gap')}")
        if any(v is None for row in h["probe"] + h["nmi"] for v in row):
            lines.append("  –: a factor that takes one value in these points, so nothing can predict it")
        ordering = (f"{_fmt(h['ordering_probe'])} (probe), {_fmt(h['ordering_nmi'])} (NMI)"
                    if h["ordering_probe"] is not None else _fmt(None, why=NO_ORDERING))
        lines.append(f"  ordering score {ordering}; MIG {_fmt(h['mig'], why='needs two or more latent units')}")
    if results.get("intervention"):
        lines += format_intervention(results["intervention"])
    if results.get("fidelity"):
        lines += format_fidelity(results["fidelity"])
    return "\n".join(lines)
