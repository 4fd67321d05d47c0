"""A run folder on disk: the names of its files, its checkpoint, and the model it holds.

``pyro-vlae fit`` writes, into one folder per run:

* :data:`CONFIG` ``config.json``: the resolved configuration (likelihood options included,
  so the model is rebuilt without the data set);
* :data:`CHECKPOINT` ``checkpoint.pt``: model, optimiser and random state (:func:`save_checkpoint`);
* :data:`METRICS` ``metrics.csv``: one row every ``log_every`` steps (:class:`MetricsLog`);
* :data:`SUMMARY` ``summary.json``: steps, training time, test ELBO;
* the pictures (:mod:`pyro_vlae.plotting`), and later :data:`EVALUATION` and :data:`REPORT`.

Every file name of a run folder is defined here, once; a picture has one name whichever
command writes it (``fit``, ``sample``, ``traverse``, ``gibbs``, ``evaluate``).

Evaluation, the diagnostics and the report read run folders through this module alone;
nothing here imports training.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from . import plugins
from ._version import __version__
from .config import RunConfig, resolve_device
from .data.base import DatasetPlugin
from .errors import CheckpointError, ConfigError, DataError
from .models import LatentModel, build_model

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
EVALUATION = "evaluation.json"
REPORT = "report.html"
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

#: the names ``pyro-vlae sample`` gave its pictures before they were named as ``fit``'s
OLD_NAMES = {SAMPLES: "sample.png", LAYERS: "sample-layers.png", LAYER: "sample-layer{layer}.png"}

#: version tag of the checkpoint format
FORMAT = "pyro-vlae-checkpoint/1"


# -------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, fsync,
    rename), so a crash never leaves a half-written file in place of a good one."""
    path = Path(path)
    payload = {"format": FORMAT, "version": __version__, **payload}
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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


def find_picture(folder: str | Path, name: str, **fields: Any) -> Path | None:
    """The picture ``name`` (formatted with ``fields``, e.g. ``layer=2``) in a run folder,
    under its name or, in a folder written by an older version, its :data:`OLD_NAMES`;
    ``None`` when there is neither."""
    for candidate in (name, OLD_NAMES.get(name)):
        if candidate is not None and (path := Path(folder) / candidate.format(**fields)).exists():
            return path
    return None


# ------------------------------------------------------------------------ the model
def open_dataset(config: RunConfig) -> DatasetPlugin:
    """The data-set plugin of ``config``, opened on its data folder."""
    return plugins.dataset(config.plugin, data_dir=config.data_dir, **config.plugin_options)


def make_model(config: RunConfig, x_shape: tuple[int, ...]) -> LatentModel:
    """A fresh model for a resolved ``config``, under a name of its own in Pyro's param store
    (which is left as it is).

    The likelihood is built from ``config.likelihood_options`` and ``config.value_range``
    (which :meth:`RunConfig.resolve` took from the data set), not from the data set.
    """
    options = dict(config.likelihood_options or {})
    if config.value_range is not None:
        options.setdefault("value_range", config.value_range)
    likelihood = plugins.likelihood(config.likelihood, **options)
    vlae = {k: getattr(config, k) for k in ("combine", "heads", "kl_weights") if getattr(config, k) is not None}
    vlae = vlae if config.model == "vlae" else {}
    return build_model(config.model, x_shape, config.z_dims, likelihood, config.stem, config.width, **vlae)


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
    """Rebuild the model of a run folder from its checkpoint, in eval mode.

    Run folders written before ``value_range`` was saved in ``config.json`` lack it; it is
    then read from the data-set plugin, as when they were trained.
    """
    path = Path(path)
    ckpt = load_checkpoint(path, map_location="cpu")
    try:
        config = RunConfig.from_dict(ckpt["config"])
        if config.value_range is None and "value_range" not in (config.likelihood_options or {}):
            config.value_range = tuple(open_dataset(config).value_range)
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
def prepare_folder(out: Path, resume: bool) -> None:
    """Check that ``out`` can hold a new run (or, with ``resume``, holds one to continue)."""
    if resume:
        if not (out / CHECKPOINT).exists():
            raise CheckpointError(
                f"--resume: no checkpoint in {out}", "pass the run folder to continue with --out"
            )
        return
    if (out / CHECKPOINT).exists():
        raise CheckpointError(
            f"{out} already holds a run ({CHECKPOINT}); it is left untouched",
            "continue it with --resume, or choose a new folder with --out",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"cannot write to the output folder {out}: {err.strerror or err}",
            "choose a writable folder with --out",
        ) from err


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """``payload`` as indented JSON (``config.json``, ``summary.json``)."""
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


class MetricsLog:
    """``metrics.csv``, one row per logged step, append-only: every row is flushed as it is
    written and never rewritten.

    A run that starts at ``step`` (the checkpoint's step when resuming, else 0) keeps the rows
    up to ``step`` and cuts the file right after them, dropping what a killed run logged past
    its last checkpoint (the resumed run logs those steps again) and a row half-written by the
    kill. The cut is one ``truncate`` at the end of the last row kept, and only when there is
    something to drop: the kept rows are never copied, rewritten or held in memory, so no
    moment of a resume can lose them. :meth:`sync` makes the rows durable before a checkpoint
    refers to them.
    """

    def __init__(self, path: Path, fields: list[str], step: int = 0) -> None:
        self.path, self.fields = path, list(fields)
        end = self._end_of_kept_rows(step)
        if end is None:  # no file yet, or one a new run starts over
            self._file = open(path, "w", newline="")
            csv.writer(self._file).writerow(self.fields)
            self._file.flush()
        else:
            if end < path.stat().st_size:
                os.truncate(path, end)
            self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.fields)

    def _end_of_kept_rows(self, step: int) -> int | None:
        """Byte offset just after the last complete row with a step <= ``step``, or ``None``
        when the file is to be started anew (missing, or a new run's with other columns)."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as f:
            header = f.readline()
            columns = next(csv.reader([header.decode("utf-8", "replace")]), [])
            if columns != self.fields or not header.endswith(b"\n"):
                if step == 0 or not header:
                    return None
                raise CheckpointError(
                    f"{self.path} has the columns {', '.join(columns)}, not this run's ({', '.join(self.fields)})",
                    f"move {self.path.name} away to resume; it is left as it was",
                )
            end = f.tell()
            for line in iter(f.readline, b""):
                if not line.endswith(b"\n"):
                    break  # half-written by a kill
                try:
                    if int(line.split(b",", 1)[0]) > step:
                        break
                except ValueError:
                    break
                end = f.tell()
        return end

    def write(self, row: dict[str, Any]) -> None:
        """Append one row and flush it to the operating system."""
        self._writer.writerow(row)
        self._file.flush()

    def sync(self) -> None:
        """Make every written row durable (``fsync``), before a checkpoint refers to it."""
        if self._file.closed:  # closed: already synced
            return
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.sync()
        self._file.close()
