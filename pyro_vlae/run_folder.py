"""A run folder on disk: the names of its files, its checkpoint, and the model it holds.

``pyro-vlae fit`` writes, into one folder per run:

* :data:`CONFIG` ``config.json``: the resolved configuration (likelihood options included,
  so the model is rebuilt without the data set);
* :data:`CHECKPOINT` ``checkpoint.pt``: model, optimiser and random state (:func:`save_checkpoint`);
* :data:`METRICS` ``metrics.csv``: one row every ``log_every`` steps
  (:class:`~pyro_vlae.metrics_log.MetricsLog`, its columns :class:`~pyro_vlae.metrics_log.Metrics`);
* :data:`SUMMARY` ``summary.json``: steps, training time, test ELBO;
* the pictures (:mod:`pyro_vlae.plotting`), and later :data:`EVALUATION` and :data:`REPORT`.

Every file name of a run folder is defined here, once; a picture has one name whichever
command writes it (``fit``, ``sample``, ``traverse``, ``gibbs``, ``evaluate``).

Evaluation, the diagnostics and the report read run folders through this module alone;
nothing here imports training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from . import plugins
from ._version import __version__
from .atomic import atomic_write, check_writable, remove_leftovers, write_text
from .config import RunConfig
from .data.base import DatasetPlugin
from .devices import resolve_device
from .errors import CheckpointError, ConfigError, DataError
from .folder_lock import FolderLock
from .models import LatentModel

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
EVALUATION = "evaluation.json"
REPORT = "report.html"
#: the lock file of the process writing the folder (:mod:`pyro_vlae.folder_lock`); it also
#: marks a folder pyro-vlae created
LOCK = ".pyro-vlae.lock"
#: ``pyro-vlae encode``'s default ``OUT`` (it writes ``OUT.npz`` and ``OUT.pt``)
FEATURES = "features-{source}"
#: the folder of ``fit --log tensorboard``'s event files
TENSORBOARD = "tensorboard"
#: the folder of ``fit --log mlflow``: its SQLite store, images and the MLflow run's id
MLFLOW = "mlflow"

# pictures: written by the command named, read back by the report
LOSS = "loss.png"  # fit
SAMPLES = "samples.png"  # fit, sample
RECONSTRUCTIONS = "reconstructions.png"  # fit
LAYER = "layer{layer}.png"  # fit, sample: per-layer noise variation of layer l
LAYERS = "layers.png"  # fit, sample: every layer's side by side
TRAVERSE = "traverse-z{layer}.png"  # traverse: one layer
TRAVERSALS = "traverse.png"  # traverse: every layer's side by side
GIBBS = "gibbs.png"  # gibbs
LATENTS = "latents.png"  # evaluate
HIERARCHY = "hierarchy.png"  # evaluate
INTERVENTION = "intervention.png"  # evaluate

#: the files of a run folder that the output of another command (``encode --out``,
#: ``compare --out``) may never replace
RUN_FILES = (CONFIG, CHECKPOINT, METRICS, SUMMARY, EVALUATION, REPORT, LOCK)

#: version tag of the checkpoint format
FORMAT = "pyro-vlae-checkpoint/1"


# -------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (:func:`~pyro_vlae.atomic.atomic_write`), so a
    crash never leaves a half-written file in place of a good one."""
    path = Path(path)
    with atomic_write(path) as f:
        torch.save({"format": FORMAT, "version": __version__, **payload}, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Accepts a run folder or the file itself. Raises :class:`CheckpointError` for a missing,
    unreadable, corrupt or foreign file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise CheckpointError(
            f"no checkpoint at {path}",
            f"pass a run folder written by `pyro-vlae fit` (it holds {CHECKPOINT})",
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(err).__name__})",
            "restore it from a backup, or retrain; pyro-vlae never overwrites a good one",
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a pyro-vlae checkpoint",
            f"pass a {CHECKPOINT} written by `pyro-vlae fit`",
        )
    return payload


def check_not_run_files(paths: list[Path]) -> None:
    """Raise :class:`ConfigError` if any of ``paths`` is a file of a run folder (:data:`RUN_FILES`)."""
    for path in paths:
        if path.name in RUN_FILES and any((path.parent / name).exists() for name in (CHECKPOINT, CONFIG, LOCK)):
            raise ConfigError(
                f"{path} is a file of the run folder {path.parent}; it is left untouched",
                "choose another --out (e.g. outside the run folder, or another name)",
            )


def check_resumable(ckpt: dict[str, Any], path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``ckpt`` holds what ``fit --resume`` reads."""
    trainer = ckpt.get("trainer")
    missing = [k for k in ("config", "x_shape", "trainer") if k not in ckpt]
    if isinstance(trainer, dict):
        missing += [f"trainer.{k}" for k in ("step", "model", "optim", "rng_cpu") if k not in trainer]
    if not missing and not (isinstance(ckpt["config"], dict) and isinstance(trainer, dict)
                            and isinstance(trainer["step"], int) and trainer["step"] >= 0):
        missing = ["a valid config and step"]
    if missing:
        raise CheckpointError(
            f"the checkpoint in {path} lacks {', '.join(missing)}: it is damaged or was not written by `pyro-vlae fit`",
            "restore it from a backup, or start a new run with another --out",
        )


def find_picture(folder: str | Path, name: str, **fields: Any) -> Path | None:
    """The picture ``name`` (formatted with ``fields``, e.g. ``layer=2``) in a run folder;
    ``None`` when it has none."""
    path = Path(folder) / name.format(**fields)
    return path if path.exists() else None


# ------------------------------------------------------------------------ the model
def open_dataset(config: RunConfig) -> DatasetPlugin:
    """The data-set plugin of ``config``, opened on its data folder."""
    return plugins.dataset(config.plugin, data_dir=config.data_dir, **config.plugin_options)


def make_model(config: RunConfig, x_shape: tuple[int, ...]) -> LatentModel:
    """A fresh model for a resolved ``config``, under a name of its own in Pyro's param store
    (which is left as it is).

    The likelihood is built by its spec (:meth:`~pyro_vlae.specs.LikelihoodSpec.build`, from
    the ``value_range`` that :meth:`RunConfig.resolve` took from the data set), not from the
    data set; the model by its spec (:meth:`~pyro_vlae.specs.ModelSpec.build`).
    """
    likelihood = config.likelihood_spec.build()
    try:
        return config.model_spec.build(x_shape, likelihood)
    except (MemoryError, RuntimeError) as err:  # PyTorch's allocator says "can't allocate memory"
        if not isinstance(err, MemoryError) and "allocate" not in str(err):
            raise
        raise ConfigError(
            f"the {config.model} with z_dims {list(config.z_dims)} and width {config.width} does not fit in "
            f"memory ({str(err).splitlines()[0]})",
            "give smaller --z-dims or --width",
        ) from None


@dataclass
class LoadedRun:
    """A finished (or interrupted) run, ready for sampling and evaluation. The data-set
    plugin is opened on first use of :attr:`plugin`: the model needs only the folder."""

    path: Path
    model: LatentModel
    config: RunConfig
    step: int

    @cached_property
    def plugin(self) -> DatasetPlugin:
        """The run's data set (for its test split, factors and value range)."""
        data_dir = self.config.data_dir
        if data_dir is not None and not Path(data_dir).is_dir():
            raise DataError(
                f"{self.path} was trained on the data in {data_dir}, which no longer exists",
                "put the data back in that folder (config.json names it)",
            )
        return open_dataset(self.config)


def load_run(path: str | Path, device: str = "cpu") -> LoadedRun:
    """Rebuild the model of a run folder from its checkpoint, in eval mode, without its
    data set (``config.json`` holds the likelihood's ``value_range``)."""
    path = Path(path)
    ckpt = load_checkpoint(path, map_location="cpu")
    try:
        config = RunConfig.from_dict(ckpt["config"])
        model = make_model(config, tuple(ckpt["x_shape"]))
        model.load_state_dict(ckpt["trainer"]["model"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint in {path} does not match this version of pyro-vlae ({err})",
            f"it was written by pyro-vlae {ckpt.get('version')}; install that version to read it",
        ) from err
    model.to(resolve_device(device)).eval()
    return LoadedRun(path if path.is_dir() else path.parent, model, config, ckpt["trainer"]["step"])


# ---------------------------------------------------------------------- writing a run
def default_folder(config: RunConfig, resume: bool = False) -> Path:
    """``fit``'s run folder when ``--out`` is not given: ``runs/PLUGIN-MODEL``, numbered
    ``-2``, ``-3``, ... past the folders that exist (a resumed run continues the unnumbered one)."""
    out = Path("runs") / f"{config.plugin}-{config.model}"
    if resume:
        return out
    n = 1
    while (out.parent / (out.name if n == 1 else f"{out.name}-{n}")).exists():
        n += 1
    return out.parent / (out.name if n == 1 else f"{out.name}-{n}")


def lock_folder(folder: str | Path, command: str) -> FolderLock:
    """The lock of the run folder ``folder`` for ``command`` (one writer at a time), acquired
    once the folder is known to be writable; the temporary files a killed process left there
    are removed. Use it as a context manager, or release it."""
    lock = FolderLock(folder, command, LOCK).acquire()
    try:
        check_writable(folder)
        remove_leftovers(folder)
    except BaseException:
        lock.release()
        raise
    return lock


def lock_run(folder: str | Path, command: str) -> FolderLock:
    """:func:`lock_folder` for a command that writes into a run ``folder`` (``evaluate``,
    ``sample``, ...); a folder without a checkpoint is refused before anything is written."""
    if not (Path(folder) / CHECKPOINT).exists():
        raise CheckpointError(
            f"no checkpoint at {Path(folder) / CHECKPOINT}",
            f"pass a run folder written by `pyro-vlae fit` (it holds {CHECKPOINT})",
        )
    return lock_folder(folder, command)


def prepare_folder(out: Path, resume: bool) -> FolderLock:
    """Lock ``out`` for ``fit`` and check that it can hold a new run (or, with ``resume``,
    holds one to continue); the caller releases the lock returned.

    A new run goes into a new or empty folder, or one a pyro-vlae run left before its first
    checkpoint: a folder holding anything else is refused, so that no file of the user's is
    written over.
    """
    if resume:
        if not (out / CHECKPOINT).exists():
            raise CheckpointError(
                f"--resume: no checkpoint in {out}", "pass the run folder to continue with --out"
            )
    else:
        _check_new(out)
        if out.is_dir() and not (out / LOCK).exists() and (names := sorted(p.name for p in out.iterdir())):
            raise ConfigError(
                f"{out} already holds files that pyro-vlae did not write ({', '.join(names[:4])}"
                f"{', ...' if len(names) > 4 else ''}); they are left untouched",
                "choose a new or empty folder with --out",
            )
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                f"cannot write to the output folder {out}: {err.strerror or err}",
                "choose a writable folder with --out",
            ) from err
    lock = lock_folder(out, "fit")
    if not resume:
        try:
            _check_new(out)  # again, now that no other process can write it
        except CheckpointError:
            lock.release()
            raise
    return lock


def _check_new(out: Path) -> None:
    if (out / CHECKPOINT).exists():
        raise CheckpointError(
            f"{out} already holds a run ({CHECKPOINT}); it is left untouched",
            "continue it with --resume, or choose a new folder with --out",
        )


def write_json(path: Path, payload: Any) -> Path:
    """``payload`` as indented JSON (``config.json``, ``summary.json``, ``evaluation.json``),
    written atomically."""
    return write_text(path, json.dumps(payload, indent=2) + "\n")
