"""What the training loop (:func:`pyro_vlae.run.loop`) tells the things that watch it.

The loop calls a list of :class:`TrainingHook` in order after every step, with the step's
:class:`~pyro_vlae.metrics_log.Metrics` on a log step: the metrics log (:class:`LogMetrics`),
a tracker (:class:`TrackMetrics`), the progress bar (:class:`ShowProgress`) and the
checkpoints (:class:`pyro_vlae.run.Checkpoints`). Every value a hook receives is typed: numbers
become text only in ``metrics.csv`` (:class:`~pyro_vlae.metrics_log.MetricsLog`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .metrics_log import Metrics, MetricsLog
from .progress import Progress

if TYPE_CHECKING:
    from .models import LatentModel
    from .tracking import Tracker

__all__ = ["LogMetrics", "ShowProgress", "TrackMetrics", "TrainingHook"]


class TrainingHook:
    """One thing the training loop keeps informed; each method does nothing unless overridden."""

    def on_step(self, step: int, metrics: Metrics | None) -> None:
        """Training step ``step`` is done; ``metrics``: its metrics on a log step of the
        process that writes the run folder, else ``None``."""

    def on_checkpoint(self, step: int) -> None:
        """The checkpoint of ``step`` is about to be saved: what it refers to is made durable."""

    def on_end(self) -> None:
        """The loop ends, whether training finished, stopped or failed (hooks end in reverse order)."""


class LogMetrics(TrainingHook):
    """Writes every log step's metrics to ``metrics.csv``, durable before each checkpoint."""

    def __init__(self, log: MetricsLog) -> None:
        self.log = log

    def on_step(self, step: int, metrics: Metrics | None) -> None:
        if metrics is not None:
            self.log.record(metrics)

    def on_checkpoint(self, step: int) -> None:
        self.log.sync()

    def on_end(self) -> None:
        self.log.close()


class TrackMetrics(TrainingHook):
    """Hands every log step's metrics to ``tracker`` as floats, with the per-layer grids of
    ``model`` every ``images_every`` steps before the last (0: none; :func:`pyro_vlae.run.finish`
    logs the last)."""

    def __init__(self, tracker: Tracker, model: LatentModel, steps: int, images_every: int) -> None:
        self.tracker, self.model, self.steps, self.images_every = tracker, model, steps, images_every

    def on_step(self, step: int, metrics: Metrics | None) -> None:
        if metrics is None:
            return
        self.tracker.log_scalars(step, metrics.scalars())
        if self.images_every and step % self.images_every == 0 and step < self.steps:
            self.tracker.log_layers(step, self.model)


class ShowProgress(TrainingHook):
    """Counts every step on ``bar``, which shows a log step's ELBO, β and per-layer KL."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar

    def on_step(self, step: int, metrics: Metrics | None) -> None:
        self.bar.update(1, None if metrics is None else self.text(metrics))

    @staticmethod
    def text(metrics: Metrics) -> str:
        """The bar's text after a log step."""
        return (f"elbo {metrics.elbo:.1f} β {metrics.beta:.2f} kl "
                + "/".join(f"{k:.1f}" for k in metrics.kl.values()))

    def on_end(self) -> None:
        self.bar.close()
