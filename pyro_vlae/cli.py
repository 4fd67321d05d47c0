"""The ``pyro-vlae`` command line: a thin layer over :mod:`pyro_vlae.run`."""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import warnings
from pathlib import Path
from typing import Any

import click

from ._version import __version__
from .config import RunConfig
from .console import echo_logs
from .devices import DEVICES, is_device
from .errors import ConfigError, FallbackWarning, PyroVlaeError
from .models import MODELS, VLAE
from .models.base import ELBOS, check_z_dims
from .nets.ladder import STEMS
from .specs import MODEL_OPTIONS, ModelSpec, TrainingSpec
from .stopping import Stopped
from .tracking import TRACKERS

#: every --seed: what Python's, NumPy's and PyTorch's generators all accept
SEED = click.IntRange(0, 2**32 - 1)


class Command(click.Command):
    """A command whose line in ``pyro-vlae --help`` is its first paragraph, shortened at a
    word if it must be; click's default stops at the first full stop, which cuts
    "(paper Prop. 1)" after "Prop."."""

    def get_short_help_str(self, limit: int = 45) -> str:
        if self.short_help:
            return self.short_help
        text = " ".join(inspect.cleandoc(self.help or "").split("\n\n")[0].split())
        return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."


class Group(click.Group):
    """Turns every :class:`PyroVlaeError` into one message and exit status 1 (no traceback),
    a run stopped by a signal (:class:`~pyro_vlae.stopping.Stopped`) into its message and the
    signal's exit status, and every :class:`FallbackWarning` into one ``warning:`` line; the
    library's log messages are written as they are meanwhile (:func:`~pyro_vlae.console.echo_logs`)."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings(), echo_logs():
                show = warnings.showwarning

                def announce(message, category, *args, **kwargs):
                    if issubclass(category, FallbackWarning):
                        click.echo(f"warning: {message}", err=True)
                    else:
                        show(message, category, *args, **kwargs)

                warnings.showwarning = announce
                return super().invoke(ctx)
        except Stopped as err:
            click.echo(f"{err.problem}\n  {err.fix}", err=True)
            ctx.exit(err.exit_code)
        except PyroVlaeError as err:
            raise click.ClickException(str(err)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None


def parse_device(ctx, param, value: str) -> str:
    """``--device``: auto, cpu, cuda or cuda:N."""
    if not is_device(value):
        raise click.BadParameter(f"{value!r} is not a device: give {', '.join(DEVICES)} or cuda:N, e.g. cuda:1")
    return value


def device_option(function):
    """``--device``, the same for every command (default: ``auto``, the :class:`RunConfig`'s)."""
    return click.option(
        "--device", default=RunConfig.default("device"), show_default=True, callback=parse_device,
        metavar="[auto|cpu|cuda|cuda:N]",
        help="Where to compute: auto (a GPU when PyTorch sees one, else the CPU), cpu, cuda or GPU N (cuda:N).",
    )(function)


def parse_list(text: str, kind: type[int] | type[float], example: str, what: str | None = None) -> tuple:
    """A comma-separated list (spaces ignored) of ``kind`` values: the one reader of every
    list option (``--z-dims``, ``--dims``, ``--kl-weights``, ``--layers``). ``what`` names
    the list in the message (default: a comma-separated list of integers, or of numbers)."""
    try:
        return tuple(kind(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        what = what or f"a comma-separated list of {'integers' if kind is int else 'numbers'}"
        raise click.BadParameter(f"{text!r} is not {what}, e.g. {example}") from None


def parse_dims(ctx, param, value: str | None) -> tuple[int, ...] | None:
    """``--z-dims`` (one width per layer, e.g. 2,2,2) or ``traverse --dims`` (one or two
    dimensions counted from 1, e.g. 1,2)."""
    if value is None:
        return None
    z_dims = param.name == "z_dims"
    example = "2,2,2" if z_dims else "1,2"
    dims = parse_list(value, int, example)
    if z_dims:
        try:
            return check_z_dims(dims)
        except ConfigError as err:
            raise click.BadParameter(f"{err.problem}; {err.fix}") from None
    if not 1 <= len(dims) <= 2 or min(dims) < 1:
        raise click.BadParameter(f"give one or two dimensions counted from 1, e.g. {example}")
    return dims


def parse_weights(ctx, param, value: str | None) -> tuple[float, ...] | None:
    """``--kl-weights``: one number per layer, e.g. 4,1,1."""
    return None if value is None else parse_list(value, float, "4,1,1")


def parse_fade_in(ctx, param, value: str | None) -> int | float | None:
    """``--fade-in``: a fraction of the run in (0, 1), or a whole number of steps per layer."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        fraction = float(value)
    except ValueError:
        fraction = math.nan
    if not 0 < fraction < 1:
        raise click.BadParameter(f"{value!r} is neither a fraction of the run in (0, 1) nor a whole number of "
                                 "steps, e.g. --fade-in 0.5 or --fade-in 500")
    return fraction


def parse_layers(ctx, param, values: tuple[str, ...]) -> tuple[int, ...]:
    """``encode --layers``, given once or more: layers counted from 1, e.g. 2,3."""
    layers = parse_list(",".join(values), int, "2,3", "a list of layers")
    if layers and min(layers) < 1:
        raise click.BadParameter("layers are counted from 1, e.g. --layers 1,2")
    return layers


def parse_options(ctx, param, values: tuple[str, ...]) -> dict[str, Any] | None:
    """``KEY=VALUE`` pairs (values read as JSON when they parse); ``None`` when the option is
    not given at all, so the data set's recommended options apply (:meth:`RunConfig.resolve`)."""
    if not values:
        return None
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        try:
            options[key.replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = raw
    return options


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pyro-vlae")
def main() -> None:
    """Learn hierarchical, disentangled features with variational ladder autoencoders in Pyro."""


@main.command()
@click.option("--plugin", default=RunConfig.default("plugin"), show_default=True,
              help="Data set plugin; `pyro-vlae plugins NAME` shows its options and the values it "
                   "recommends (each [default: the data set's] below).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder holding the data set's files.")
@click.option("--plugin-option", "-P", "plugin_options", multiple=True, callback=parse_options,
              metavar="KEY=VALUE", help="Option for the data set plugin, e.g. -P num_train=5000.")
@click.option("--model", default=RunConfig.default("model"), show_default=True,
              help=f"Model: {', '.join(list(MODELS)[:-1])} or {list(MODELS)[-1]}.")
@click.option("--likelihood", help="Decoder likelihood [default: the data set's].")
@click.option("--likelihood-option", "-L", "likelihood_options", multiple=True, callback=parse_options,
              metavar="KEY=VALUE", help="Option for the likelihood, e.g. -L scale=0.1.")
@click.option("--z-dims", callback=parse_dims, help="Widths of z1..zL, e.g. 2,2,2 [default: the data set's].")
@click.option("--stem", type=click.Choice(["auto", *STEMS]),
              help=f"Network family [default: the data set's recipe for the model, else {ModelSpec.DEFAULTS['stem']}: "
              "from the data's shape].")
@click.option("--width", type=float, help="Multiplier on channels and dense widths [default: the data set's].")
@click.option("--combine", type=click.Choice(VLAE.COMBINES),
              help="VLAE: join z̃ and v_l(z_l) by concatenation (eq. 11) or the authors' gated addition "
              f"[default: the data set's, else {MODEL_OPTIONS['combine']}].")
@click.option("--heads", type=click.Choice(VLAE.HEADS),
              help="VLAE: linear ladder heads (μ, σ) or two dense layers first "
              f"[default: the data set's, else {MODEL_OPTIONS['heads']}].")
@click.option("--z-norm", type=click.Choice(["batch", "none"]),
              help="VLAE: batch norm in the dense layers that read z_l (v_l, f_L's first), as the authors', "
              f"or none [default: the data set's, else {MODEL_OPTIONS['z_norm']}].")
@click.option("--fade-in", callback=parse_fade_in, metavar="FRACTION|STEPS",
              help="VLAE: fade the layers in from the top down, every layer fully on after FRACTION (in (0, 1)) "
              "of the run, or one layer every STEPS steps (0: off) "
              f"[default: the data set's, else {TrainingSpec.FADE_IN}].")
@click.option("--kl-weights", callback=parse_weights, metavar="W1,...,WL",
              help="VLAE: weight of each layer's KL term, z1 first (all 1: the ELBO) [default: the data set's].")
@click.option("--steps", type=int, help="Training steps [default: the data set's].")
@click.option("--epochs", type=float, help="Train for this many passes over the data instead of --steps.")
@click.option("--batch-size", type=int, help="Mini-batch size [default: the data set's].")
@click.option("--lr", type=float, help="Adam learning rate [default: the data set's].")
@click.option("--warmup-steps", type=int,
              help="Steps over which the KL weight β rises to --beta [default: the data set's, else "
                   f"{RunConfig.DEFAULTS['warmup_steps']}].")
@click.option("--beta", type=float, default=RunConfig.default("beta"), show_default=True,
              help="Final KL weight (β≠1: a β-VAE).")
@click.option("--elbo", type=click.Choice(ELBOS), default=RunConfig.default("elbo"), show_default=True,
              help="trace: Trace_ELBO (sampled KL); meanfield: TraceMeanField_ELBO (analytic KL).")
@click.option("--clip-norm", type=float, help="Clip each parameter's gradient norm (per-data-point units).")
@device_option
@click.option("--seed", type=SEED, default=RunConfig.default("seed"), show_default=True,
              help="Seed: a CPU run repeats bit for bit.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder [default: runs/PLUGIN-MODEL, numbered if taken].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--checkpoint-every", type=int, default=RunConfig.default("checkpoint_every"), show_default=True,
              help="Save the checkpoint every this many steps (and at the end).")
@click.option("--log-every", type=int, default=RunConfig.default("log_every"), show_default=True,
              help="Write a row of metrics.csv (and a progress line) every this many steps.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option("--jit/--no-jit", default=RunConfig.default("jit"), show_default=True,
              help="Trace model and guide once with Pyro's JIT ELBO (see benchmarks/README.md).")
@click.option("--compile/--no-compile", default=RunConfig.default("compile"),
              help="Compile the training step (on the CPU: torch.compile, cached in ~/.cache/pyro-vlae/inductor) "
                   "or run it eagerly [default: a CUDA graph on CUDA, eager on the CPU; see benchmarks/README.md].")
@click.option("--bf16", is_flag=True, help="CUDA only: bfloat16 autocast for the networks.")
@click.option("--dist-timeout", type=click.FloatRange(min=1), default=RunConfig.default("dist_timeout"),
              show_default=True, metavar="SECONDS",
              help="Under torchrun: how long a process waits for the others before stopping with an error.")
@click.option("--log", "tracker", type=click.Choice(TRACKERS),
              help="Also write metrics, per-layer grids and hyper-parameters to a tracker "
                   '(extras: pip install "pyro-vlae[tensorboard]" or "pyro-vlae[mlflow]"); '
                   "metrics.csv is written either way.")
@click.option("--log-images-every", type=click.IntRange(0), default=RunConfig.default("log_images_every"),
              show_default=True, metavar="N",
              help="With --log: per-layer grids every N steps (0: only at the end).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Start from a run's config.json (or its folder) or a TOML/YAML file with the same keys; "
                   "options given here override it.")
@click.pass_context
def fit(ctx: click.Context, out: Path | None, resume: bool, progress: bool, config_file: Path | None,
        **options: Any) -> None:
    """Train a model and write a run folder: checkpoint, metrics, loss curve and pictures."""
    from .config_file import fit_config
    from .run import fit as run_fit

    given = {
        k: v for k, v in options.items()
        if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE
    }
    config, given = fit_config(options, given, config_file)  # --resume applies or refuses the options given
    if out is None:
        from .run_folder import default_folder

        out = default_folder(config, resume)
    run_fit(config, out, resume=resume, progress=progress, echo=click.echo, overrides=given)


@main.command("plugins")
@click.argument("name", required=False)
def list_plugins_command(name: str | None) -> None:
    """List the data-set and likelihood plugins and the package providing each; with NAME,
    that plugin's options and, for a data set, the values it recommends.
    """
    import warnings

    from .plugins import describe_plugin, list_plugins

    if name is not None:
        click.echo("\n".join(describe_plugin(name, RunConfig.DEFAULTS)))
        return

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = list_plugins()
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    width = max((len(i.name) for i in infos), default=4)
    click.echo(f"{'NAME':<{width}}  {'KIND':<10}  {'DISTRIBUTION':<16}  DESCRIPTION")
    for i in infos:
        text = f"BROKEN: {i.error}" if i.error else i.description
        click.echo(f"{i.name:<{width}}  {i.kind:<10}  {i.distribution:<16}  {text}")
    click.echo("\n`pyro-vlae plugins NAME` shows a plugin's options and a data set's recommended values.")


@main.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--iwae-samples", type=int, default=1000, show_default=True,
              help="Importance samples K of the IWAE bound (1 to 5000).")
@click.option("--iwae-points", type=int, default=500, show_default=True,
              help="Test points the IWAE bound is averaged over: a random subset drawn with --seed.")
@click.option("--num-points", type=int, help="Evaluate a random subset of N test points only [default: all].")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the random draws and subsets: the same seed gives the same numbers.")
@click.option("--chunk", type=int, default=5000, show_default=True,
              help="Rows (samples × points) scored at once; bounds memory.")
@device_option
@click.option("--intervention/--no-intervention", default=True, show_default=True,
              help="Measure the interventional layer × factor matrix (trains the data set's factor reader once).")
@click.option("--intervention-samples", type=click.IntRange(2), default=1000, show_default=True,
              help="Pairs of generated images per layer for the intervention matrix.")
@click.option("--fidelity-samples", type=click.IntRange(0), default=2000, show_default=True,
              help="Samples compared with as many test images for the sample fidelity (0: not measured).")
@click.option("--reader-steps", type=click.IntRange(1),
              help="Training steps of the factor reader (trained once per data set, then cached) [default: 3000].")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def evaluate(run: Path, device: str, **options: Any) -> None:
    """Measure a run: ELBO, IWAE, per-layer KL, active units, PCA, the intervention matrix,
    the sample fidelity and hierarchy metrics.

    Prints a table and writes evaluation.json, latents.png, intervention.png and
    hierarchy.png into RUN.
    """
    from .evaluate import evaluate_run, format_evaluation
    from .run_folder import EVALUATION

    options = {k: v for k, v in options.items() if v is not None or k != "reader_steps"}
    with writing(run, "evaluate"):
        results = evaluate_run(run, device=device, **options)
    click.echo(format_evaluation(results))
    click.echo(f"wrote {run / EVALUATION}")


@main.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
def report(run: Path) -> None:
    """Write RUN/report.html: configuration, curves, metrics, heat map and pictures on one page."""
    from .evaluate.report import write_report

    with writing(run, "report"):
        click.echo(f"wrote {write_report(run)}")


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("comparison"),
              show_default=True, help="Writes OUT.md, OUT.csv and OUT.json.")
def compare(runs: tuple[Path, ...], out: Path) -> None:
    """Compare evaluated runs: per run, and mean ± sd per model, per data set and layer count."""
    from .evaluate.report import compare_runs, format_comparison, write_comparison

    rows = compare_runs(runs)
    click.echo(format_comparison(rows))
    click.echo("wrote " + ", ".join(str(p) for p in write_comparison(rows, out)))

@main.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--split", help="Encode this split of the run's data set [default: test].")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Encode every image in this folder (any depth); other sizes are resized, with a message.")
@click.option("--tensor", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Encode a .npy or .pt tensor shaped (N, *data shape); other shapes are refused.")
@click.option("--layers", "--layer", "layers", multiple=True, callback=parse_layers, metavar="L[,L...]",
              help="Layers to export, counted from 1, e.g. --layers 3 or --layers 2,3 [default: all].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Writes OUT.npz and OUT.pt [default: RUN/features-SOURCE].")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True,
              help="Data points encoded at once; bounds memory.")
@device_option
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def encode(run: Path, split: str | None, images: Path | None, tensor: Path | None, layers: tuple[int, ...],
           out: Path | None, batch_size: int, device: str, progress: bool) -> None:
    """Per-layer posterior means and scales (z1_loc, z1_scale, ...) of data, for other tools.

    Writes OUT.npz (numpy.load) and OUT.pt (torch.load), each a mapping of arrays (N, d_l),
    with each row's index (and, for image files, its path below the folder).
    """
    import torch

    from .encode import encode_run, save_features
    from .run_folder import FEATURES

    given = [s for s in (split, images, tensor) if s is not None]
    if len(given) > 1:
        raise ConfigError("--split, --images and --tensor exclude each other", "give one of them")
    source = str(given[0]) if given else "test"
    if out is None:
        out = run / FEATURES.format(source=Path(source).stem if (images or tensor) else source)
    into_run = Path(out).resolve().parent == run.resolve()  # the lock only where the output goes into the run
    with writing(run, "encode") if into_run else contextlib.nullcontext():
        features = encode_run(run, source, layers, batch_size, device, progress, echo=click.echo)
        shapes = ", ".join(f"{k} {tuple(v.shape) if torch.is_tensor(v) else (len(v),)}" for k, v in features.items())
        click.echo(f"{shapes}\nwrote " + ", ".join(str(p) for p in save_features(features, out)))


@main.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 opens the page to your network.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--samples", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Images in the grid of samples sharing the locked layers.")
@click.option("--span", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="Sliders and the pads of 2-D layers run over [-SPAN, SPAN].")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random draws.")
@device_option
def explore(run: Path, host: str, port: int, samples: int, span: float, seed: int, device: str) -> None:
    """Play with one latent layer at a time in the browser: a local web page for RUN.

    Needs the optional extra: pip install "pyro-vlae[explore]".
    """
    from .explore import serve

    serve(run, host, port, device, samples, span, seed)


# ---------------------------------------------------------------- diagnostics of a finished run
def writing(run: Path, command: str):
    """The lock of the run folder ``run`` while ``command`` writes into it (one writer at a
    time; :func:`~pyro_vlae.run_folder.lock_folder`), as a context manager."""
    from .run_folder import lock_run

    return lock_run(run, command)


def _load(run: Path, device: str, seed: int):
    import pyro

    from .run_folder import load_run

    loaded = load_run(run, device)
    pyro.set_rng_seed(seed)
    return loaded


def diagnostic_command(function):
    """The arguments every diagnostic shares: the run folder, --seed and --device."""
    function = device_option(function)
    function = click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random draws.")(
        function
    )
    return click.argument("run", type=click.Path(file_okay=False, path_type=Path))(function)


@main.command()
@diagnostic_command
@click.option("--rows", type=click.IntRange(1), default=8, show_default=True, help="Rows of each grid.")
@click.option("--cols", type=click.IntRange(1), default=8, show_default=True, help="Columns of each grid.")
def sample(run: Path, seed: int, device: str, rows: int, cols: int) -> None:
    """Ancestral samples and per-layer noise variation (paper Figs. 3, 6-7) of RUN.

    Writes samples.png, layer{l}.png (each row holds every layer's noise but l's fixed; l's
    is re-drawn along the row) and layers.png into RUN: fit's pictures, drawn anew.
    """
    from .plotting import save_samples

    with writing(run, "sample"):
        loaded = _load(run, device, seed)
        paths = save_samples(loaded.model, loaded.path, rows, cols)
    click.echo("wrote " + ", ".join(str(p) for p in paths))


@main.command()
@diagnostic_command
@click.option("--layer", "layers", type=click.IntRange(1), multiple=True, help="Layer to traverse [default: all].")
@click.option("--dims", callback=parse_dims, help="One or two dimensions of the layer, counted from 1 [default: 1,2].")
@click.option("--steps", type=click.IntRange(2), default=9, show_default=True, help="Grid points per dimension.")
@click.option("--span", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="Traverse [-SPAN, SPAN].")
def traverse(run: Path, seed: int, device: str, layers: tuple[int, ...], dims, steps: int, span: float) -> None:
    """Latent traversals (paper Fig. 5) of RUN: a grid over one layer's code, others sampled.

    Writes traverse-z{l}.png per layer and traverse.png (all side by side) into RUN.
    """
    from .plotting import save_traversals

    with writing(run, "traverse"):
        loaded = _load(run, device, seed)
        dims = None if dims is None else tuple(d - 1 for d in dims)
        paths = save_traversals(loaded.model, loaded.path, layers, dims, steps, span)
    click.echo("wrote " + ", ".join(str(p) for p in paths))


@main.command()
@diagnostic_command
@click.option("--steps", type=click.IntRange(1), default=50, show_default=True, help="Gibbs steps.")
@click.option("--chains", type=click.IntRange(1), default=8, show_default=True, help="Chains, one per row.")
@click.option("--start", type=click.Choice(["data", "noise"]), default="data", show_default=True,
              help="Start from test images or from uniform noise.")
@click.option("--mean/--sample", "use_mean", default=False, show_default=True,
              help="Next state: the likelihood's mean, or a sample of it (Proposition 1).")
def gibbs(run: Path, seed: int, device: str, steps: int, chains: int, start: str, use_mean: bool) -> None:
    """Gibbs chain on the bottom layer (paper Prop. 1, Fig. 2) of RUN, beside ancestral samples.

    z1 ~ q(z1|x), x ~ p(x|z1) (for VAE/VLAE, z1..zL). Writes gibbs.png into RUN: left, each
    row one chain from its start to the last step; right, samples of the full model.
    """
    from .plotting import save_gibbs
    from .plugins import load_data
    from .run_folder import GIBBS

    with writing(run, "gibbs"):
        loaded = _load(run, device, seed)
        x0 = None
        if start == "data":
            split = "test" if "test" in loaded.plugin.splits else "train"
            x0 = load_data(loaded.plugin, split).head(chains)
        path = save_gibbs(loaded.model, loaded.path / GIBBS, x0, chains, steps, use_mean=use_mean)
    click.echo(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover
    main(prog_name="pyro-vlae")
