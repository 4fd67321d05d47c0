"""Experiment tracking: ``pyro-vlae fit --log tensorboard``.

A :class:`Tracker` receives what a run already records — every row of ``metrics.csv``
(ELBO, β, reconstruction, per-layer KL), the per-layer grids of
:func:`pyro_vlae.diagnostics.layer_variation` every ``images_every`` steps, and the
hyper-parameters with the final test metrics — and hands them to a tracking library's own
writer. ``metrics.csv`` is written as before; a tracker is an extra copy.

The libraries are optional extras and are imported only when a tracker is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:  # the command line imports TRACKERS; torch is imported when a tracker runs
    import torch

    from .models.base import LatentModel

#: the ``--log`` choices
TRACKERS = ("tensorboard",)


class Tracker:
    """What :func:`pyro_vlae.run.fit` tells a tracking library; subclasses write it."""

    def log_row(self, row: Mapping[str, Any]) -> None:
        """One row of ``metrics.csv`` (``step`` and numbers written as text)."""

    def log_layers(self, step: int, model: LatentModel, rows: int = 4, cols: int = 8) -> None:
        """The per-layer conditional-sampling grids (paper Figs. 3, 6–7) at ``step``."""

    def log_hyperparameters(self, config: Mapping[str, Any], results: Mapping[str, float]) -> None:
        """The run's configuration beside its final metrics."""

    def close(self) -> None:
        """Flush and close."""


def layer_grids(model: LatentModel, rows: int = 4, cols: int = 8) -> dict[str, torch.Tensor]:
    """``{"z1": (3, H, W), ...}``: each layer's grid of :func:`layer_variation` in [0, 1].
    The draws come from a forked random stream, so logging never changes training."""
    import torch

    from .diagnostics import layer_variation
    from .plotting import grid

    grids = {}
    was_training = model.training
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(0)
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
    """Import the library of tracker ``name``, or say how to install it."""
    if name not in TRACKERS:
        raise ConfigError(f"unknown tracker {name!r}", f"pass --log with one of: {', '.join(TRACKERS)}")
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"--log tensorboard needs the tensorboard package ({err})",
            'pip install "pyro-vlae[tensorboard]", or drop --log',
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

    def log_row(self, row: Mapping[str, Any]) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key != "step":
                self.writer.add_scalar(f"train/{key}", float(value), step)
        self.writer.flush()

    def log_layers(self, step: int, model: LatentModel, rows: int = 4, cols: int = 8) -> None:
        for name, grid in layer_grids(model, rows, cols).items():
            self.writer.add_image(f"layers/{name}", grid, step)
        self.writer.flush()

    def log_hyperparameters(self, config: Mapping[str, Any], results: Mapping[str, float]) -> None:
        self.writer.add_hparams(flat_hyperparameters(config), dict(results), run_name=".")

    def close(self) -> None:
        self.writer.close()


def open_tracker(name: str | None, run_folder: str | Path) -> Tracker | None:
    """The tracker ``--log NAME`` asks for (``None``: none), writing below ``run_folder``."""
    if name is None:
        return None
    from .run_folder import TENSORBOARD

    require_tracker(name)
    return TensorBoard(Path(run_folder) / TENSORBOARD)
