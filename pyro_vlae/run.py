"""A training run on disk: the thin layer between :class:`Trainer` and the command line.

A run folder holds ``config.json`` (the resolved configuration), ``checkpoint.pt``,
``metrics.csv`` (one row every ``log_every`` steps), ``summary.json`` and the pictures:
``loss.png``, ``samples.png``, ``reconstructions.png``, ``layer{l}.png`` and ``layers.png``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyro
import torch
from tqdm.auto import tqdm

from . import plotting, plugins
from ._version import __version__
from .config import RunConfig
from .data.base import DatasetPlugin, StreamData, TensorData
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .models import LatentModel, build_model
from .tracking import open_tracker
from .train import CHECKPOINT, KLWarmup, LayerFadeIn, Trainer, distributed, load_checkpoint, save_checkpoint

#: options a resumed run may change; everything else comes from the checkpoint
RESUMABLE = ("steps", "epochs", "device", "checkpoint_every", "log_every")


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was requested but PyTorch sees no CUDA device",
            "install a CUDA build of torch (see the README) or use --device cpu",
        )
    return torch.device(name)


def open_dataset(config: RunConfig) -> DatasetPlugin:
    return plugins.dataset(config.plugin, data_dir=config.data_dir, **config.plugin_options)


def make_model(config: RunConfig, plugin: DatasetPlugin, x_shape: tuple[int, ...]) -> LatentModel:
    """A fresh model for a resolved ``config`` (the global param store is cleared)."""
    pyro.clear_param_store()
    options = dict(config.likelihood_options or {})
    options.setdefault("value_range", plugin.value_range)
    likelihood = plugins.likelihood(config.likelihood, **options)
    vlae = {k: getattr(config, k) for k in ("combine", "heads") if getattr(config, k) is not None}
    vlae = vlae if config.model == "vlae" else {}
    return build_model(config.model, x_shape, config.z_dims, likelihood, config.stem, config.width, **vlae)


@dataclass
class LoadedRun:
    """A finished (or interrupted) run, ready for sampling and evaluation."""

    path: Path
    model: LatentModel
    config: RunConfig
    plugin: DatasetPlugin
    step: int


def load_run(path: str | Path, device: str = "cpu") -> LoadedRun:
    """Rebuild the model of a run folder from its checkpoint, in eval mode."""
    path = Path(path)
    ckpt = load_checkpoint(path, map_location="cpu")
    try:
        config = RunConfig.from_dict(ckpt["config"])
        plugin = open_dataset(config)
        model = make_model(config, plugin, tuple(ckpt["x_shape"]))
        model.load_state_dict(ckpt["trainer"]["model"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint in {path} does not match this version of pyro-vlae ({err})",
            f"it was written by pyro-vlae {ckpt.get('version')}; install that version to read it",
        ) from err
    model.to(resolve_device(device)).eval()
    return LoadedRun(path if path.is_dir() else path.parent, model, config, plugin, ckpt["trainer"]["step"])


def _prepare_folder(out: Path, resume: bool) -> None:
    if resume:
        if not (out / CHECKPOINT).exists():
            raise CheckpointError(
                f"--resume: no checkpoint in {out}", "pass the run folder to continue with --out"
            )
        return
    if (out / CHECKPOINT).exists():
        raise CheckpointError(
            f"{out} already holds a run (checkpoint.pt); it is left untouched",
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


def _metrics_writer(path: Path, fields: list[str], step: int):
    """Open ``metrics.csv`` for appending, dropping rows after ``step`` (resume)."""
    rows = []
    if path.exists() and step > 0:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    f = open(path, "w", newline="")  # closed by fit()
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return f, writer


@torch.no_grad()
def evaluate_elbo(
    model: LatentModel, data: TensorData | StreamData | torch.Tensor, batch_size: int = 500
) -> dict[str, Any]:
    """Mean ELBO, reconstruction term and per-layer KL per data point, in eval mode."""
    if torch.is_tensor(data):
        data = TensorData(data)
    was_training = model.training
    model.eval()
    total, recon, kl, n = 0.0, 0.0, None, 0
    for x in data.batches(batch_size):
        x = x.to(model.device)
        terms = model.elbo_terms(x)
        recon += float(terms["recon"].sum())
        layer_kl = terms["kl"].sum(0)
        kl = layer_kl if kl is None else kl + layer_kl
        total += float((terms["recon"] - terms["kl"].sum(-1)).sum())
        n += x.shape[0]
    model.train(was_training)
    return {"elbo": total / n, "recon": recon / n, "kl": [float(k) / n for k in kl]}


def fit(
    config: RunConfig,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    overrides: dict[str, Any] | None = None,
    dist_timeout: float = distributed.DEFAULT_TIMEOUT,
    tracker: str | None = None,
    log_images_every: int = 500,
) -> Path:
    """Train ``config`` into the run folder ``out`` and write its pictures.

    With ``resume`` the configuration comes from the checkpoint in ``out``, except the
    options in :data:`RESUMABLE` given in ``overrides``; training continues from the saved
    step with the same result as an uninterrupted run.

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1), every process trains on its shard of each
    global batch with DistributedDataParallel (:mod:`pyro_vlae.train.distributed`) and process
    0 alone writes the run folder; ``dist_timeout`` bounds how long a process waits for the others.

    ``tracker`` (e.g. ``"tensorboard"``, :mod:`pyro_vlae.tracking`) also receives every metrics
    row, the per-layer grids every ``log_images_every`` steps (0: at the end only) and the
    hyper-parameters with the final test metrics.
    """
    context = distributed.setup(config.device, dist_timeout)
    try:
        return _fit(config, Path(out), resume, progress, echo, overrides, context, tracker, log_images_every)
    finally:
        distributed.teardown(context)


def _fit(
    config: RunConfig,
    out: Path,
    resume: bool,
    progress: bool,
    echo: Callable[[str], None],
    overrides: dict[str, Any] | None,
    context: distributed.DistributedContext | None,
    tracker: str | None = None,
    log_images_every: int = 500,
) -> Path:
    main = context is None or context.is_main
    if not main:
        echo, progress = (lambda _: None), False

    def open_folder() -> dict[str, Any] | None:
        _prepare_folder(out, resume)
        return load_checkpoint(out) if resume else None

    if context is None:
        ckpt = open_folder()
    else:
        context.check_same({**config.to_dict(), "out": str(out), "resume": resume})
        ckpt = context.on_main(open_folder)  # process 0 reads the run folder and shares it
    if resume:
        saved = RunConfig.from_dict(ckpt["config"])
        for key, value in (overrides or {}).items():
            if key not in RESUMABLE and value != getattr(saved, key):
                raise ConfigError(
                    f"--resume continues the saved configuration, but {key} was given as "
                    f"{value!r} (saved: {getattr(saved, key)!r})",
                    f"drop that option, or start a new run with --out; resumable: {', '.join(RESUMABLE)}",
                )
            if key in RESUMABLE:
                setattr(saved, key, value)
        config = saved

    plugin = open_dataset(config)
    t0 = time.perf_counter()
    train = plugins.load_data(plugin, "train")
    test = plugins.load_data(plugin, "test") if "test" in plugin.splits else None
    load_seconds = time.perf_counter() - t0
    config = config.resolve(plugin.recommended, plugin.default_likelihood, len(train))
    device = resolve_device(config.device) if context is None else context.device

    pyro.set_rng_seed(config.seed)
    model = make_model(config, plugin, train.shape)
    # streamed data is checked on its first batches, in-memory data entirely
    model.check_data(train.head(4 * config.batch_size) if isinstance(train, StreamData) else train.head())
    model.to(device)
    trainer = (Trainer if context is None else partial(distributed.DistributedTrainer, context=context))(
        model,
        train if isinstance(train, StreamData) else train.x.to(device),
        transform=getattr(train, "transform", None),
        batch_size=config.batch_size,
        lr=config.lr,
        warmup=KLWarmup(config.warmup_steps, min(config.beta_start, config.beta), config.beta),
        fade_in=LayerFadeIn(config.fade_in or 0),
        elbo=config.elbo,
        num_particles=config.num_particles,
        clip_norm=config.clip_norm,
        seed=config.seed,
        jit=config.jit,
        bf16=config.bf16,
    )
    if ckpt is not None:
        trainer.load_state_dict(ckpt["trainer"])
    if main:
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    track = open_tracker(tracker, out) if main else None

    num_params = sum(p.numel() for p in model.parameters())
    processes = "" if context is None else f" × {context.world_size} processes"
    echo(
        f"pyro-vlae {__version__}: {config.model} on {config.plugin} "
        f"({len(train)} × {tuple(train.shape)}, loaded in {load_seconds:.1f}s), "
        f"z_dims={list(config.z_dims)}, {num_params:,} parameters, likelihood={config.likelihood}, "
        f"device={device}{processes}, steps {trainer.step_count}→{config.steps}, run folder {out}"
    )

    def payload(finished: bool) -> dict[str, Any]:
        return {
            "config": config.to_dict(),
            "x_shape": list(train.shape),
            "trainer": trainer.state_dict(),
            "finished": finished,
        }

    def save(finished: bool) -> None:
        if main:
            save_checkpoint(out / CHECKPOINT, payload(finished))

    last_saved = trainer.step_count if ckpt is not None else None
    sites = model.latent_sites
    fields = ["step", "beta", "loss", "elbo", "recon", *[f"kl_{s}" for s in sites], "seconds"]
    f, writer = _metrics_writer(out / "metrics.csv", fields, trainer.step_count) if main else (None, None)
    started = time.perf_counter()
    bar = tqdm(
        total=config.steps, initial=trainer.step_count, disable=not progress, unit="step",
        dynamic_ncols=True, desc=config.model,
    )
    finite = torch.ones((), dtype=torch.bool, device=device)  # every loss so far finite
    try:
        while trainer.step_count < config.steps:
            beta = trainer.beta
            loss_t = trainer.train_step()
            finite &= torch.isfinite(loss_t)
            step = trainer.step_count
            bar.update(1)
            logging = step % config.log_every == 0 or step == config.steps
            if logging or step % config.checkpoint_every == 0:  # the loop's only device syncs
                if not bool(finite):
                    where = f"the checkpoint of step {last_saved} is kept" if last_saved else "nothing was saved"
                    raise TrainingDiverged(
                        f"the loss became NaN or infinite by step {step}; {where} in {out}",
                        "lower --lr, set --clip-norm (e.g. 10), or lengthen --warmup-steps",
                    )
                loss = float(loss_t)
            if main and logging:
                terms = evaluate_elbo(model, trainer.batch(step - 1))
                row = {
                    "step": step, "beta": f"{beta:.6g}", "loss": f"{loss:.6g}",
                    "elbo": f"{terms['elbo']:.6g}", "recon": f"{terms['recon']:.6g}",
                    "seconds": f"{time.perf_counter() - started:.3f}",
                    **{f"kl_{s}": f"{k:.5g}" for s, k in zip(sites, terms["kl"])},
                }
                writer.writerow(row)
                f.flush()
                if track is not None:
                    track.log_row(row)
            if track is not None and log_images_every and step % log_images_every == 0 and step < config.steps:
                track.log_layers(step, model)
                bar.set_postfix_str(
                    f"elbo {terms['elbo']:.1f} β {beta:.2f} kl " + "/".join(f"{k:.1f}" for k in terms["kl"])
                )
            if step % config.checkpoint_every == 0 and step < config.steps:
                save(finished=False)
                last_saved = step
    except KeyboardInterrupt:
        if not bool(finite):
            echo(f"\ninterrupted after the loss became NaN or infinite; the checkpoint of step {last_saved} is kept")
            raise
        save(finished=False)
        echo(f"\ninterrupted: checkpoint of step {trainer.step_count} saved; continue with --resume")
        raise
    finally:
        bar.close()
        if f is not None:
            f.close()
        if track is not None and trainer.step_count < config.steps:
            track.close()
    save(finished=True)
    seconds = time.perf_counter() - started
    if not main:
        return out

    summary: dict[str, Any] = {"steps": config.steps, "train_seconds": round(seconds, 2)}
    if test is not None:
        summary["test"] = evaluate_elbo(model, test)
        summary["test"]["kl"] = dict(zip(sites, summary["test"]["kl"]))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    pictures = write_pictures(model, out, plugin.value_range, test if test is not None else train)
    if track is not None:
        track.log_layers(config.steps, model)
        final = summary.get("test", {"kl": {}})
        results = {f"test/kl_{s}": k for s, k in final["kl"].items()}
        track.log_hyperparameters(config.to_dict(), {"test/elbo": final["elbo"], **results} if "elbo" in final else {})
        track.close()
    echo(f"trained {config.steps} steps in {seconds:.0f}s")
    if test is not None:
        t = summary["test"]
        echo(
            f"test ELBO {t['elbo']:.2f} nats/point (recon {t['recon']:.2f}); KL per layer: "
            + ", ".join(f"{s} {k:.2f}" for s, k in t["kl"].items())
        )
    echo("wrote " + ", ".join(str(p) for p in [out / CHECKPOINT, out / "metrics.csv", *pictures]))
    return out


def write_pictures(
    model: LatentModel, out: Path, value_range: tuple[float, float], data: TensorData | StreamData
) -> list[Path]:
    """Loss curve, samples, reconstructions and the per-layer grids of a trained model."""
    model.eval()
    paths = [plotting.plot_metrics(out / "metrics.csv", out / "loss.png")]
    paths.append(plotting.save_images(model.generate(64), out / "samples.png", 8, value_range))
    x = data.head(32).to(model.device)
    pairs = torch.stack([x, model.reconstruct(x)], dim=1).flatten(0, 1)
    paths.append(plotting.save_images(pairs, out / "reconstructions.png", 8, value_range))
    paths += plotting.save_layer_grids(model, out, value_range=value_range)
    return paths
