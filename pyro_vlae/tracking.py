"""Experiment tracking: ``pyro-vlae fit --log tensorboard`` or ``--log mlflow``.

A :class:`Tracker` receives what a run already records — every row of ``metrics.csv`` as
floats (ELBO, β, reconstruction, per-layer KL: :meth:`pyro_vlae.metrics_log.Metrics.scalars`,
through the loop's :class:`pyro_vlae.hooks.TrackMetrics`), the per-layer grids of
:func:`pyro_vlae.diagnostics.layer_variation` every ``images_every`` steps, and the
hyper-parameters with the final test metrics — and hands them to a tracking library's own
writer. ``metrics.csv`` is written as before; a tracker is an extra copy.

The libraries are optional extras and are imported only when a tracker is opened.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_text
from .errors import ConfigError
from .stopping import Stopped

if TYPE_CHECKING:  # the command line imports TRACKERS; torch is imported when a tracker runs
    import torch

    from .models.base import LatentModel

#: the ``--log`` choices
TRACKERS = ("tensorboard", "mlflow")
#: the modules each tracker imports, with the package that brings each
MODULES = {
    "tensorboard": {"torch.utils.tensorboard": "tensorboard"},
    "mlflow": {"mlflow": "mlflow-skinny", "sqlalchemy": "sqlalchemy", "alembic": "alembic"},
}


class Tracker:
    """What :func:`pyro_vlae.run.fit` tells a tracking library; subclasses write it."""

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """The numbers of ``metrics.csv``'s row of ``step`` (``{"elbo": -85.2, ...}``), logged as ``train/NAME``."""

    def log_layers(self, step: int, model: LatentModel, rows: int = 4, cols: int = 8) -> None:
        """The per-layer conditional-sampling grids (paper Figs. 3, 6–7) at ``step``."""

    def log_hyperparameters(self, config: Mapping[str, Any], results: Mapping[str, float]) -> None:
        """The run's configuration beside its final metrics."""

    def close(self, error: BaseException | None = None) -> None:
        """Flush and close; ``error``: what stopped training early, if anything."""


#: the seed of every per-layer grid a tracker logs: the same draws at every step
LAYER_GRIDS_SEED = 0


def layer_grids(model: LatentModel, rows: int = 4, cols: int = 8) -> dict[str, torch.Tensor]:
    """``{"z1": (3, H, W), ...}``: each layer's grid of :func:`layer_variation` in [0, 1].
    The draws come from a random state of their own, seeded with :data:`LAYER_GRIDS_SEED`
    (:func:`~pyro_vlae.rng.seeded`), so logging never changes training and every step's grids
    show the same draws; callers need no seeding of their own."""
    from .diagnostics import layer_variation
    from .plotting import grid
    from .rng import seeded

    grids = {}
    was_training = model.training
    with seeded(LAYER_GRIDS_SEED, model.device):
        for layer, name in enumerate(model.latent_sites, start=1):
            picture = grid(model, layer_variation(model, layer, rows, cols), cols)
            grids[name] = picture if picture.shape[0] == 3 else picture.expand(3, -1, -1)
    model.train(was_training)
    return grids


def flat_hyperparameters(config: Mapping[str, Any]) -> dict[str, int | float | str | bool]:
    """A configuration as the scalar values tracking libraries take: nested options become
    ``plugin_options.num_train``, lists and ``None`` become text."""
    out: dict[str, int | float | str | bool] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            for k, v in flat_hyperparameters(value).items():
                out[f"{key}.{k}"] = v
        elif isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            out[key] = str(value) if not isinstance(value, list | tuple) else ",".join(map(str, value))
    return out


def require_tracker(name: str) -> None:
    """Import the library of tracker ``name``, or say how to install it. MLflow's SQLite
    store needs SQLAlchemy and Alembic too, unless ``MLFLOW_TRACKING_URI`` names another."""
    if name not in TRACKERS:
        raise ConfigError(f"unknown tracker {name!r}", f"pass --log with one of: {', '.join(TRACKERS)}")
    modules = dict(MODULES[name])
    if name == "mlflow" and not mlflow_uri(".").startswith("sqlite"):
        modules = {"mlflow": modules["mlflow"]}
    for module, package in modules.items():
        try:
            __import__(module)
        except ImportError as err:
            raise ConfigError(
                f"--log {name} needs the {package} package ({err})",
                f'pip install "pyro-vlae[{name}]", or drop --log',
            ) from None


class TensorBoard(Tracker):
    """Writes to ``RUN/tensorboard/`` with :class:`torch.utils.tensorboard.SummaryWriter`:
    scalars ``train/elbo``, ``train/beta``, ``train/kl_z1``, …, images ``layers/z1``, …, and
    the hyper-parameters with ``test/elbo`` and ``test/kl_z*`` (the HPARAMS tab).
    View with ``tensorboard --logdir RUN``."""

    def __init__(self, folder: str | Path) -> None:
        require_tracker("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(f"train/{key}", value, step)
        self.writer.flush()

    def log_layers(self, step: int, model: LatentModel, rows: int = 4, cols: int = 8) -> None:
        for name, grid in layer_grids(model, rows, cols).items():
            self.writer.add_image(f"layers/{name}", grid, step)
        self.writer.flush()

    def log_hyperparameters(self, config: Mapping[str, Any], results: Mapping[str, float]) -> None:
        self.writer.add_hparams(flat_hyperparameters(config), dict(results), run_name=".")

    def close(self, error: BaseException | None = None) -> None:
        self.writer.close()


def mlflow_uri(run_folder: str | Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else a SQLite store in ``RUN/mlflow/mlflow.db``."""
    from .run_folder import MLFLOW

    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(run_folder) / MLFLOW / 'mlflow.db').resolve()}"


class MLflow(Tracker):
    """Writes with MLflow's own client (:class:`mlflow.tracking.MlflowClient`) to
    :func:`mlflow_uri`, by default a SQLite store in ``RUN/mlflow/`` with the images in
    ``RUN/mlflow/artifacts/``: one MLflow run per run folder, named after it, in the
    experiment ``MLFLOW_EXPERIMENT_NAME`` (default ``pyro-vlae``); ``fit --resume`` goes on
    with it (its id is kept in ``RUN/mlflow/run-id``). It holds the metrics ``train/elbo``,
    ``train/beta``, ``train/kl_z1``, …, the images ``layers/z1``, … at their steps, the
    configuration as parameters (MLflow keeps a parameter's first value) and the final
    ``test/elbo`` and ``test/kl_z*``. View with ``mlflow ui --backend-store-uri URI``."""

    def __init__(self, run_folder: str | Path) -> None:
        require_tracker("mlflow")
        import logging

        from mlflow.exceptions import MlflowException

        for name in ("mlflow.store.db.utils", "alembic"):  # the store's set-up notes
            logging.getLogger(name).setLevel(logging.WARNING)
        from .run_folder import MLFLOW

        run_folder = Path(run_folder)
        self.folder = run_folder / MLFLOW
        self.uri = mlflow_uri(run_folder)
        try:
            self.run_id = self._open(run_folder)
        except MlflowException as err:
            raise ConfigError(
                f"cannot open the MLflow tracking store {self.uri}: {err.message}",
                "check MLFLOW_TRACKING_URI (or unset it: a SQLite store in the run folder), or drop --log",
            ) from None

    def _open(self, run_folder: Path) -> str:
        """The id of the run folder's MLflow run: the one kept in ``mlflow/run-id`` if the
        store still has it, else a new one."""
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        own_store = not os.environ.get("MLFLOW_TRACKING_URI")
        if own_store:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "pyro-vlae"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            artifacts = (self.folder / "artifacts").resolve().as_uri() if own_store else None
            experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
        else:
            experiment_id = experiment.experiment_id
        kept = self.folder / "run-id"
        if kept.exists():
            try:
                run_id = self.client.get_run(kept.read_text().strip()).info.run_id
                self.client.update_run(run_id, status="RUNNING")
                return run_id
            except MlflowException:  # another tracking store than the last time: a new run
                pass
        run = self.client.create_run(experiment_id, run_name=run_folder.name,
                                     tags={"pyro_vlae.run_folder": str(run_folder.resolve())})
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text(kept, run.info.run_id + "\n")
        return run.info.run_id

    def _metrics(self, values: Mapping[str, float], step: int) -> list:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        return [Metric(key, value, now, step) for key, value in values.items()]

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        self.client.log_batch(self.run_id, metrics=self._metrics(
            {f"train/{key}": value for key, value in scalars.items()}, step))

    def log_layers(self, step: int, model: LatentModel, rows: int = 4, cols: int = 8) -> None:
        for name, grid in layer_grids(model, rows, cols).items():
            image = grid.permute(1, 2, 0).clamp(0, 1).cpu().numpy()  # (H, W, 3) in [0, 1]
            self.client.log_image(self.run_id, image, key=f"layers/{name}", step=step)

    def log_hyperparameters(self, config: Mapping[str, Any], results: Mapping[str, float]) -> None:
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        params = [Param(k, str(v)) for k, v in flat_hyperparameters(config).items() if k not in logged]
        self.client.log_batch(self.run_id, metrics=self._metrics(results, int(config.get("steps") or 0)),
                              params=params)

    def close(self, error: BaseException | None = None) -> None:
        stopped = isinstance(error, (KeyboardInterrupt, Stopped))
        status = "FINISHED" if error is None else "KILLED" if stopped else "FAILED"
        self.client.set_terminated(self.run_id, status)


def open_tracker(name: str | None, run_folder: str | Path) -> Tracker | None:
    """The tracker ``--log NAME`` asks for (``None``: none), writing below ``run_folder``."""
    if name is None:
        return None
    from .run_folder import TENSORBOARD

    require_tracker(name)
    if name == "mlflow":
        return MLflow(run_folder)
    return TensorBoard(Path(run_folder) / TENSORBOARD)
