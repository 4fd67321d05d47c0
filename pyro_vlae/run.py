"""Training a model into a run folder (:mod:`pyro_vlae.run_folder`): the thin layer between
:class:`~pyro_vlae.train.Trainer` and ``pyro-vlae fit``.

:func:`fit` reads as its four stages: :func:`resolve` (command line → configuration → data-set
plugin, the one place an option gets its value), :func:`build` (model and trainer),
:func:`loop` (training with logging, checkpoints and the NaN guard) and :func:`finish`
(summary and pictures).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyro
import torch

from . import plugins
from ._version import __version__
from .config import RESUMABLE, RunConfig
from .data.base import Data, DatasetPlugin, worker_failed
from .devices import resolve_device
from .errors import ConfigError, DataError, TrainingDiverged
from .evaluate.latents import evaluate_elbo
from .folder_lock import FolderLock
from .hooks import LogMetrics, ShowProgress, TrackMetrics, TrainingHook
from .metrics_log import Metrics, MetricsLog
from .models import LatentModel
from .plotting import write_pictures
from .progress import Progress
from .rng import derived_seed, seeded
from .run_folder import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    SUMMARY,
    check_resumable,
    load_checkpoint,
    make_model,
    open_dataset,
    prepare_folder,
    save_checkpoint,
    write_json,
)
from .stopping import Stopped, StopRequests, agreed, signal_name
from .tracking import Tracker, open_tracker
from .train import KLWarmup, LayerFadeIn, Trainer, distributed

__all__ = ["RESUMABLE", "Setup", "build", "finish", "fit", "loop", "resolve"]

logger = logging.getLogger(__name__)


def fit(
    config: RunConfig,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Train ``config`` into the run folder ``out`` and write its pictures.

    With ``resume`` the configuration comes from the checkpoint in ``out``, except the
    options in :data:`RESUMABLE` given in ``overrides`` and this invocation's tracker settings
    (:meth:`RunConfig.resume`); training continues from the saved step with the same result
    as an uninterrupted run.

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1), every process trains on its shard of each
    global batch with DistributedDataParallel (:mod:`pyro_vlae.train.distributed`) and process
    0 alone writes the run folder; ``config.dist_timeout`` bounds how long a process waits for the others.

    ``config.tracker`` (e.g. ``"tensorboard"``, :mod:`pyro_vlae.tracking`) also receives every
    metrics row, the per-layer grids every ``config.log_images_every`` steps (0: at the end only)
    and the hyper-parameters with the final test metrics. What the run says (banner, warnings,
    what it wrote) goes to this module's logger, the progress lines off a terminal to ``echo``."""
    created = not resume and not Path(out).exists()  # a failed start removes the folder it made
    started = False
    context = distributed.setup(config.device, config.dist_timeout)
    stops = StopRequests()
    echo, log = stops.guard(echo), stops.guard(logger.log)  # a closed output pipe stops the run like a signal
    setup = None
    try:
        setup = resolve(config, Path(out), resume, overrides, context)
        if not setup.main:
            echo, log, progress = _quiet, _quiet, False
        trainer = build(setup)
        track = None
        if setup.main:
            track = open_tracker(setup.config.tracker, setup.out)  # a store that cannot be opened stops the run here
            write_json(setup.out / CONFIG, setup.config.to_dict())
        log(logging.INFO, _banner(setup, trainer))
        if (warning := fade_in_warning(setup.config)) is not None:
            log(logging.WARNING, warning)
        started = True
        try:
            seconds = loop(setup, trainer, progress, echo, track, setup.config.log_images_every, stops)
        except BaseException as err:
            if track is not None:
                track.close(err)
            raise
        finally:
            trainer.batches.reset()  # a streamed data set's loader workers end here
        if setup.main:
            finish(setup, trainer.model, seconds, track, log)
        return setup.out
    finally:
        if setup is not None and setup.lock is not None:
            setup.lock.release()
        if created and not started and (context is None or context.is_main):
            _remove_unstarted(Path(out))
        distributed.teardown(context)


def _quiet(*args: Any) -> None:
    """Says nothing: what a process other than the main one of a data-parallel run says."""


def _remove_unstarted(out: Path) -> None:
    """Remove the run folder ``out`` that a run which failed before its first step created
    (it holds only what ``fit`` wrote while starting: the lock, ``config.json``, a tracker's
    folder), so that a failed start leaves nothing behind."""
    if out.is_dir() and not (out / CHECKPOINT).exists():
        shutil.rmtree(out, ignore_errors=True)


# ----------------------------------------------------------------------------- resolve
@dataclass
class Setup:
    """A run resolved by :func:`resolve`: its final configuration, data and starting point."""

    config: RunConfig
    out: Path
    plugin: DatasetPlugin
    train: Data
    test: Data | None
    load_seconds: float
    checkpoint: dict[str, Any] | None
    context: distributed.DistributedContext | None
    #: process 0's lock on the run folder, held until the run ends (:func:`prepare_folder`)
    lock: FolderLock | None = None

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder (process 0, or the only one)."""
        return self.context is None or self.context.is_main


def resolve(
    config: RunConfig,
    out: Path,
    resume: bool,
    overrides: dict[str, Any] | None,
    context: distributed.DistributedContext | None = None,
) -> Setup:
    """Command line → configuration → data-set plugin: open the run folder (and the checkpoint
    to resume from), load the data and fill every unset option (:meth:`RunConfig.resolve`).
    Process 0 locks the run folder (:func:`prepare_folder`) and holds the lock in the setup."""
    locks: list[FolderLock] = []

    def open_folder() -> dict[str, Any] | None:
        locks.append(prepare_folder(out, resume))
        if not resume:
            return None
        ckpt = load_checkpoint(out)
        check_resumable(ckpt, out)
        return ckpt

    try:
        if context is None:
            ckpt = open_folder()
        else:
            context.check_same({**config.to_dict(), "out": str(out), "resume": resume})
            ckpt = context.on_main(open_folder)  # process 0 reads the run folder and shares it
        if resume:
            config = config.resume(RunConfig.from_dict(ckpt["config"]), overrides or {})
        plugin = open_dataset(config)
        t0 = time.perf_counter()
        train = plugins.load_data(plugin, "train")
        test = plugins.load_data(plugin, "test") if "test" in plugin.splits else None
        load_seconds = time.perf_counter() - t0
        recommended = plugin.recommended_for(config.model)
        config = config.resolve(recommended, plugin.default_likelihood, len(train), plugin.value_range)
        if ckpt is not None and config.steps < (done := int(ckpt["trainer"]["step"])):
            raise ConfigError(
                f"--resume to {config.steps} steps, but the run in {out} has done {done} already",
                f"give --steps {done} or more (a run is never cut back)",
            )
    except BaseException:
        for lock in locks:
            lock.release()
        raise
    return Setup(config, out, plugin, train, test, load_seconds, ckpt, context, locks[0] if locks else None)


# ------------------------------------------------------------------------------- build
def build(setup: Setup) -> Trainer:
    """The model (seeded, checked on the data, on its device) and its trainer, restored from
    the checkpoint when resuming."""
    config, train, context = setup.config, setup.train, setup.context
    device = resolve_device(config.device) if context is None else context.device
    pyro.set_rng_seed(config.seed)
    model = make_model(config, train.shape)
    model.check_data(train.points_to_check(config.batch_size))
    model.to(device)
    trainer = (Trainer if context is None else partial(distributed.DistributedTrainer, context=context))(
        model,
        train.for_training(device),
        transform=train.transform,
        batch_size=config.batch_size,
        lr=config.lr,
        warmup=KLWarmup(config.warmup_steps, config.beta_start, config.beta),
        fade_in=LayerFadeIn(config.fade_in or 0),
        elbo=config.elbo,
        num_particles=config.num_particles,
        clip_norm=config.clip_norm,
        seed=config.seed,
        jit=config.jit,
        bf16=config.bf16,
        compile=config.compile,
    )
    if setup.checkpoint is not None:
        trainer.load_state_dict(setup.checkpoint["trainer"])
    return trainer


def _banner(setup: Setup, trainer: Trainer) -> str:
    config, train, context = setup.config, setup.train, setup.context
    num_params = sum(p.numel() for p in trainer.model.parameters())
    processes = "" if context is None else f" × {context.world_size} processes"
    return (
        f"pyro-vlae {__version__}: {config.model} on {config.plugin} "
        f"({len(train)} × {tuple(train.shape)}, loaded in {setup.load_seconds:.1f}s), "
        f"z_dims={list(config.z_dims)}, {num_params:,} parameters, likelihood={config.likelihood}, "
        f"device={trainer.model.device}{processes}, steps {trainer.step_count}→{config.steps} "
        f"({config.steps * config.batch_size / len(train):.4g} epochs of batches of {config.batch_size}, "
        f"KL warm-up over {config.warmup_steps} steps), "
        f"run folder {setup.out}"
    )


def fade_in_warning(config: RunConfig) -> str | None:
    """A warning naming the VLAE layers the fade-in leaves not fully on for the whole run
    (their KL then says nothing about what they would learn); ``None`` when there are none."""
    fade = LayerFadeIn(config.fade_in or 0)
    late = fade.never_fully_on(config.steps, len(config.z_dims))
    if not late:
        return None
    names = ", ".join(f"z{k + 1} (fully on from step {fade.fully_on_at(len(config.z_dims))[k]})" for k in late)
    return (f"warning: the fade-in (one layer every {fade.stage_steps} steps) leaves {names} not fully on "
            f"in this run of {config.steps} steps; their KL will be near 0 only because the decoder ignored them. "
            "Give the fade-in as a fraction of the run (e.g. --fade-in 0.5) or train longer")


# -------------------------------------------------------------------------------- loop
class Checkpoints(TrainingHook):
    """Saves the trainer into ``checkpoint.pt`` (process 0 only) every ``checkpoint_every``
    steps and when told (:meth:`save`), once the ``hooks`` have made what it covers durable
    (:meth:`TrainingHook.on_checkpoint`: the rows of ``metrics.csv``), and stops a diverged run
    (:meth:`check`) before its state is saved or evaluated, naming the last checkpoint it keeps:
    every checkpoint saved holds finite parameters whose loss had not exploded."""

    #: a loss per data point this many times (the magnitude of) the run's first one has exploded
    EXPLODED = 1000.0

    def __init__(self, setup: Setup, trainer: Trainer, hooks: Sequence[TrainingHook] = ()) -> None:
        self.setup, self.trainer, self.hooks = setup, trainer, list(hooks)
        self.last_saved = trainer.step_count if setup.checkpoint is not None else None
        #: the loss of the run's first step, which :meth:`check` measures an explosion by
        self.first_loss: float | None = (setup.checkpoint or {}).get("first_loss")
        #: whether every loss so far was finite, on the model's device (read at syncs only)
        self.finite = torch.ones((), dtype=torch.bool, device=trainer.model.device)
        #: seconds trained before this process started (a resumed run's earlier ones)
        self.earlier_seconds = float((setup.checkpoint or {}).get("train_seconds", 0.0))
        self.started = time.perf_counter()
        #: the training time the last checkpoint records (``summary.json`` shows the final one)
        self.saved_seconds = self.earlier_seconds

    @property
    def train_seconds(self) -> float:
        """Seconds spent training, over every process that trained this run."""
        return self.earlier_seconds + time.perf_counter() - self.started

    def observe(self, loss: torch.Tensor) -> None:
        """Note the loss of the step just taken (the first one is read: one extra device sync)."""
        self.finite &= torch.isfinite(loss)
        if self.first_loss is None:
            self.first_loss = float(loss) if bool(self.finite) else None

    def on_step(self, step: int, metrics: Metrics | None) -> None:
        config = self.setup.config
        if step % config.checkpoint_every == 0 and step < config.steps:
            self.save()

    def save(self, finished: bool = False) -> None:
        """Save the checkpoint of the step just taken (``finished``: the run's last), after
        every hook's :meth:`~TrainingHook.on_checkpoint`."""
        self.saved_seconds = round(self.train_seconds, 3)
        for hook in self.hooks:
            hook.on_checkpoint(self.trainer.step_count)
        if self.setup.main:
            payload = {
                "config": self.setup.config.to_dict(),
                "x_shape": list(self.setup.train.shape),
                "trainer": self.trainer.state_dict(),
                "finished": finished,
                "first_loss": self.first_loss,
                "train_seconds": self.saved_seconds,
            }
            save_checkpoint(self.setup.out / CHECKPOINT, payload)
        self.last_saved = self.trainer.step_count

    def check(self, loss: float, step: int) -> None:
        """Raise :class:`TrainingDiverged` unless every loss so far was finite, the
        parameters are, and ``loss`` (of ``step``) is under :attr:`EXPLODED` times the first."""
        problem = None
        if not bool(self.finite):
            problem = f"the loss became NaN or infinite by step {step}"
        elif not bool(torch.stack([torch.isfinite(p).all() for p in self.trainer.model.parameters()]).all()):
            problem = f"the parameters became NaN or infinite in step {step}"
        elif self.first_loss is not None and loss - self.first_loss > self.EXPLODED * max(abs(self.first_loss), 1.0):
            problem = f"the loss exploded to {loss:.3g} by step {step} (from {self.first_loss:.3g} at the start)"
        if problem is not None:
            self.diverged(problem)

    def diverged(self, problem: str) -> None:
        kept = f"the checkpoint of step {self.last_saved} is kept" if self.last_saved else "nothing was saved"
        raise TrainingDiverged(
            f"{problem}; {kept} in {self.setup.out}",
            "lower --lr, set --clip-norm (e.g. 10), or lengthen --warmup-steps",
        )


def loop(setup: Setup, trainer: Trainer, progress: bool, echo: Callable[[str], None], track: Tracker | None = None,
         log_images_every: int = 500, stops: StopRequests | None = None) -> float:
    """Train to ``config.steps``, telling each step to the hooks (:mod:`pyro_vlae.hooks`): a
    metrics row every ``log_every`` steps (also to ``track``, with its per-layer grids every
    ``log_images_every`` steps), the progress bar, and a checkpoint every ``checkpoint_every``;
    a stop with the last checkpoint kept if the loss is not finite, and a checkpoint when a
    data file cannot be read (:class:`DataError`).

    A step is atomic with respect to the stop signals of ``stops`` (:mod:`pyro_vlae.stopping`):
    the step in progress is finished, its checkpoint saved, and :class:`Stopped` raised. The
    metrics of a log step come from a random state of their own (:func:`~pyro_vlae.rng.seeded`),
    so how often a run logs never changes what it learns. Returns the seconds spent training,
    over every process that trained the run (a resumed run's earlier ones included).
    ``echo`` receives the progress lines printed off a terminal."""
    config, model = setup.config, trainer.model
    hooks: list[TrainingHook] = []
    if setup.main:
        hooks.append(LogMetrics(MetricsLog(setup.out / METRICS, Metrics.columns(model.latent_sites),
                                           trainer.step_count)))
    if track is not None:
        hooks.append(TrackMetrics(track, model, config.steps, log_images_every))
    checkpoints = Checkpoints(setup, trainer, hooks)
    bar = Progress(config.steps, progress, echo, initial=trainer.step_count, desc=config.model, what="training",
                   advice=lambda rate: f"a first look: --steps {max(1, int(rate * 600))} takes about 10 min here")
    hooks += [ShowProgress(bar), checkpoints]
    stops = stops or StopRequests()
    try:
        with stops:
            _train(setup, trainer, checkpoints, hooks, stops)
    except KeyboardInterrupt:  # a second signal, or one where no handler could be installed
        if setup.main:
            stops.guard(logger.warning)(f"\nstopped at once; {_kept(checkpoints)}")
        raise
    except RuntimeError as err:  # a loader worker died while this process was inside a step
        if "DataLoader worker" not in str(err):
            raise
        failed = worker_failed(err)
        raise DataError(
            f"{failed.problem}; training stopped in step {trainer.step_count + 1}, and "
            f"{_kept(checkpoints)} in {setup.out}",
            f"{failed.fix}, then continue with --resume",
        ) from err
    except DataError as err:  # an unreadable file in a streamed data set: stop, keep everything
        if not bool(checkpoints.finite):
            raise
        raise _saved_before(setup, trainer, checkpoints, err) from err
    finally:
        for hook in reversed(hooks):
            hook.on_end()
    return checkpoints.saved_seconds


def _train(setup: Setup, trainer: Trainer, checkpoints: Checkpoints, hooks: Sequence[TrainingHook],
           stops: StopRequests) -> None:
    """The steps of :func:`loop`, each told to ``hooks`` (with its :class:`Metrics` on a log
    step), then the final checkpoint; a stop request ends the run after the step in progress."""
    config, model = setup.config, trainer.model
    while trainer.step_count < config.steps:
        beta = trainer.beta
        loss_t = trainer.train_step()
        checkpoints.observe(loss_t)
        step = trainer.step_count
        logging = step % config.log_every == 0 or step == config.steps
        if logging or step % config.checkpoint_every == 0:  # the loop's only device syncs
            loss = float(loss_t)
            checkpoints.check(loss, step)
        metrics = _measure(setup, trainer, checkpoints, beta, loss) if setup.main and logging else None
        for hook in hooks:
            hook.on_step(step, metrics)
        signum = stops.signum
        if setup.context is not None:  # every process stops after the same step
            with setup.context.collective(f"the stop check of step {step}"):
                signum = agreed(signum, model.device)
        if signum is not None:
            checkpoints.check(float(loss_t), step)
            if checkpoints.last_saved != step:
                checkpoints.save(finished=step >= config.steps)
            raise _stopped(signum, step, setup)
    checkpoints.save(finished=True)
    if stops.signum is not None:  # received during the final save, which it waited for
        raise _stopped(stops.signum, trainer.step_count, setup)


def _kept(checkpoints: Checkpoints) -> str:
    """What a run that stopped in the middle of a step keeps."""
    kept = checkpoints.last_saved
    return f"the checkpoint of step {kept} is kept" if kept else "nothing was saved"


def _stopped(signum: int, step: int, setup: Setup) -> Stopped:
    """The end of a run stopped by ``signum`` after ``step``, its checkpoint saved."""
    return Stopped(
        signum,
        f"stopped by {signal_name(signum)} after step {step} of {setup.config.steps}; "
        f"its checkpoint is saved in {setup.out}",
        f"continue with: pyro-vlae fit --resume --out {setup.out}",
    )


def _measure(setup: Setup, trainer: Trainer, checkpoints: Checkpoints, beta: float, loss: float) -> Metrics:
    """The metrics of the step just taken: the ELBO's terms on its batch, drawn from a random
    state of the step's own."""
    step, model = trainer.step_count, trainer.model
    with seeded(derived_seed(setup.config.seed, step), model.device):
        try:
            terms = evaluate_elbo(model, trainer.batch(step - 1))
        except ValueError as err:  # a distribution refused parameters gone out of range
            checkpoints.diverged(f"the model's parameters went out of range by step {step} "
                                 f"({str(err).splitlines()[0]})")
    return Metrics(step=step, beta=beta, loss=loss, elbo=terms["elbo"], recon=terms["recon"],
                   kl=dict(zip(model.latent_sites, terms["kl"])), seconds=checkpoints.train_seconds)


def _saved_before(setup: Setup, trainer: Trainer, checkpoints: Checkpoints, err: DataError) -> DataError:
    """Save the checkpoint of the last step taken before a data file could not be read, and
    the error that says so."""
    checkpoints.save()
    return DataError(
        f"{err.problem}; training stopped before step {trainer.step_count + 1}, and the checkpoint of "
        f"step {trainer.step_count} is saved in {setup.out}",
        f"{err.fix or 'fix the file'}, then continue with --resume",
    )

# ------------------------------------------------------------------------------ finish
def finish(
    setup: Setup, model: LatentModel, seconds: float, track: Tracker | None = None,
    log: Callable[..., None] = logger.log,
) -> None:
    """``summary.json`` (with the test ELBO), the pictures (also to ``track``, with the
    hyper-parameters and final test metrics), and what was written, told to ``log`` (called as
    :meth:`logging.Logger.log`)."""
    config, out, test, sites = setup.config, setup.out, setup.test, model.latent_sites
    summary: dict[str, Any] = {
        "steps": config.steps,
        "train_seconds": round(seconds, 2),
        "data": {"plugin": config.plugin, "data_dir": config.data_dir, "files": setup.plugin.sources(),
                 **setup.plugin.provenance()},
    }
    if test is not None:
        summary["test"] = evaluate_elbo(model, test)
        summary["test"]["kl"] = dict(zip(sites, summary["test"]["kl"]))
    write_json(out / SUMMARY, summary)
    pictures = write_pictures(model, out, test if test is not None else setup.train)
    if track is not None:
        track.log_layers(config.steps, model)
        final = summary.get("test", {"kl": {}})
        results = {f"test/{Metrics.kl_column(s)}": k for s, k in final["kl"].items()}
        track.log_hyperparameters(config.to_dict(), {"test/elbo": final["elbo"], **results} if "elbo" in final else {})
        track.close()
    log(logging.INFO, f"trained {config.steps} steps in {seconds:.0f}s")
    if test is not None:
        t = summary["test"]
        log(
            logging.INFO,
            f"test ELBO {t['elbo']:.2f} nats/point (recon {t['recon']:.2f}); KL per layer: "
            + ", ".join(f"{s} {k:.2f}" for s, k in t["kl"].items())
        )
    log(logging.INFO, "wrote " + ", ".join(str(p) for p in [out / CHECKPOINT, out / METRICS, *pictures]))
