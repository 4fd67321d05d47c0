"""The full configuration of a training run, saved with every checkpoint."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .devices import DEVICES, is_device
from .errors import ConfigError
from .models import MODELS, VLAE, model_options
from .models.base import DEFAULT_Z_DIMS, ELBOS, check_z_dims


@dataclass
class RunConfig:
    """Everything that determines a run. ``None`` means "the data set's recommendation,
    else the library default" and is resolved by :meth:`resolve`."""

    plugin: str = "shapes"
    plugin_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    model: str = "vlae"
    z_dims: tuple[int, ...] | None = None
    stem: str | None = None
    width: float | None = None
    likelihood: str | None = None
    likelihood_options: dict[str, Any] | None = None
    #: the data's range ``(low, high)``, the likelihood's ``value_range``: the data set's, or
    #: ``-L value_range=...``; saved so that a run folder rebuilds its model without the data set
    value_range: tuple[float, float] | None = None
    steps: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup_steps: int | None = None
    #: first β of the KL warm-up (not a command-line option); a smaller ``beta`` lowers it
    beta_start: float = 1e-3
    beta: float = 1.0
    elbo: str = "trace"
    combine: str | None = None
    heads: str | None = None
    z_norm: str | None = None
    #: VLAE fade-in (:class:`~pyro_vlae.train.LayerFadeIn`): steps per layer (an integer, 0: off)
    #: or a fraction in (0, 1) of the run after which every layer is fully on; :meth:`resolve`
    #: turns a fraction into steps per layer, so a resumed run keeps its schedule
    fade_in: int | float | None = None
    kl_weights: tuple[float, ...] | None = None
    num_particles: int = 1
    clip_norm: float | None = None
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    jit: bool = False
    bf16: bool = False
    #: the compiled step (:class:`~pyro_vlae.train.Trainer`'s ``compile``): ``None`` its default
    #: (a CUDA graph on CUDA, the eager step on the CPU), ``True`` a compiled step, ``False`` eager
    compile: bool | None = None

    DEFAULTS = {
        "z_dims": DEFAULT_Z_DIMS,
        "stem": "auto",
        "width": 1.0,
        "batch_size": 100,
        "lr": 2e-4,
        "steps": 10000,
        "warmup_steps": 2000,
    }
    #: VLAE-only options and their defaults: its constructor's (:class:`~pyro_vlae.models.VLAE`)
    #: and the fade-in of its layers (:class:`~pyro_vlae.train.LayerFadeIn`)
    VLAE_DEFAULTS = {**model_options(VLAE), "fade_in": 0}

    def resolve(
        self,
        recommended: dict[str, Any],
        default_likelihood: str,
        num_data: int,
        value_range: Sequence[float] | None = None,
    ) -> RunConfig:
        """A copy with every ``None`` filled from the data set's ``recommended`` settings (its
        recipe for this model, :meth:`~pyro_vlae.data.DatasetPlugin.recommended_for`) and
        ``default_likelihood``, then the library defaults; ``epochs`` is turned into ``steps``.
        A recipe may give its budget in ``epochs`` and its KL warm-up in ``warmup_epochs``;
        the warm-up then keeps its share of the budget when ``steps`` or ``epochs`` scale the
        budget (e.g. 200 of 2000 epochs: the first tenth of any budget).
        ``value_range`` is the data set's, or the one given as a likelihood option
        (``-L value_range=...``), which moves here: the resolved configuration holds it once and
        builds the model without the data set.
        Raises :class:`ConfigError` on bad values."""
        c = dataclasses.replace(self)
        if c.steps is None and c.epochs is None and "epochs" in recommended:
            c.epochs = recommended["epochs"]
        warmup_share = None
        if c.warmup_steps is None and "warmup_epochs" in recommended:
            warmup_share = recommended["warmup_epochs"] / recommended["epochs"]
        for key, default in self.DEFAULTS.items():
            if getattr(c, key) is None:
                setattr(c, key, recommended.get(key, default))
        if c.likelihood is None:
            c.likelihood = default_likelihood
        if c.likelihood_options is None:
            # the data set recommends options for its own likelihood only
            own = c.likelihood == default_likelihood
            c.likelihood_options = dict(recommended.get("likelihood_options", {}) if own else {})
        c.likelihood_options = dict(c.likelihood_options)
        if "value_range" in c.likelihood_options:
            c.value_range = tuple(float(v) for v in c.likelihood_options.pop("value_range"))
        elif c.value_range is None and value_range is not None:
            c.value_range = tuple(float(v) for v in value_range)
        if c.data_dir is not None:  # so the run finds its data from any folder
            c.data_dir = str(Path(c.data_dir).expanduser().resolve())
        c.beta_start = min(c.beta_start, c.beta)  # the warm-up rises to β, or holds a smaller β
        for key, default in self.VLAE_DEFAULTS.items():
            if c.model != "vlae":
                if getattr(c, key) not in (None, default):
                    option = "--" + key.replace("_", "-")
                    raise ConfigError(f"{option} applies to the VLAE only, not to --model {c.model}", f"drop {option}")
                setattr(c, key, default)
            elif getattr(c, key) is None:
                setattr(c, key, recommended.get(key, default))
        c.z_dims = check_z_dims(c.z_dims)
        if c.kl_weights is not None:
            VLAE.check_kl_weights(c.kl_weights, len(c.z_dims))
        if c.epochs is not None:
            if not c.epochs > 0:
                raise ConfigError(f"--epochs must be positive, got {c.epochs}")
            c.steps = max(1, math.ceil(c.epochs * num_data / c.batch_size))
            c.epochs = None
        if warmup_share is not None:
            c.warmup_steps = round(warmup_share * c.steps)
        c.validate(num_data)
        from .train.schedule import LayerFadeIn  # the trainer imports this module

        c.fade_in = LayerFadeIn.stage_for(c.fade_in, c.steps, len(c.z_dims))
        return c

    def validate(self, num_data: int | None = None) -> None:
        """Raise :class:`ConfigError` naming the first invalid option. Options of the command
        line are named as such (``--beta``); the others as fields of :class:`RunConfig`."""
        if self.steps is not None and self.epochs is not None:
            raise ConfigError("--steps and --epochs exclude each other", "give one of them")
        checks = [
            (self.steps is None or self.steps >= 1, "--steps must be at least 1"),
            (self.batch_size is None or self.batch_size >= 2,
             "--batch-size must be at least 2 (batch norm needs two samples)"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (self.warmup_steps is None or self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (self.beta > 0, "--beta must be positive (it scales the KL terms; poutine.scale refuses 0)"),
            (self.beta_start > 0, "RunConfig.beta_start, the first β of the warm-up, must be positive"),
            (self.elbo in ELBOS, f"--elbo must be one of {', '.join(ELBOS)}"),
            (is_device(self.device), f"--device must be one of {', '.join(DEVICES)} or cuda:N"),
            (self.num_particles >= 1, "RunConfig.num_particles must be at least 1"),
            (self.clip_norm is None or self.clip_norm > 0, "--clip-norm must be positive"),
            (self.checkpoint_every >= 1 and self.log_every >= 1,
             "--checkpoint-every and --log-every must be at least 1"),
            (self.width is None or self.width > 0, "--width must be positive"),
            (self.fade_in is None or _valid_fade_in(self.fade_in),
             "--fade-in must be a whole number of steps per layer (0: off) or a fraction of the run in (0, 1)"),
            (self.epochs is None or self.epochs > 0, "--epochs must be positive"),
            (all(v is None or math.isfinite(v) for v in (self.lr, self.beta, self.clip_norm, self.width, self.epochs)),
             "--lr, --beta, --clip-norm, --width and --epochs must be finite numbers"),
            (isinstance(self.seed, int) and 0 <= self.seed < 2**32, "--seed must be an integer from 0 to 4294967295"),
            (not self.bf16 or self.device != "cpu", "--bf16 needs a CUDA device (drop it with --device cpu)"),
            ("data_dir" not in self.plugin_options, "give the data folder with --data-dir, not -P data_dir"),
        ]
        if self.z_dims is not None:
            check_z_dims(self.z_dims)
        for ok, message in checks:
            if not ok:
                fix = "set it in the RunConfig" if message.startswith("RunConfig.") else "see `pyro-vlae fit --help`"
                raise ConfigError(f"invalid option: {message}", fix)
        if num_data is not None and self.batch_size is not None and self.batch_size > num_data:
            raise ConfigError(
                f"--batch-size {self.batch_size} is larger than the data set ({num_data} items)",
                f"use --batch-size {num_data} or less",
            )

    def model_options(self) -> dict[str, Any]:
        """The options this run's model class declares beyond those every model takes
        (:func:`~pyro_vlae.models.model_options`: the VLAE's ``combine``, ``heads``,
        ``kl_weights``, ``z_norm``), where set."""
        declared = model_options(MODELS[self.model]) if self.model in MODELS else {}
        return {k: getattr(self, k) for k in declared if getattr(self, k) is not None}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["z_dims"] = list(self.z_dims) if self.z_dims is not None else None
        d["kl_weights"] = list(self.kl_weights) if self.kl_weights is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        for key in ("z_dims", "kl_weights", "value_range"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


def _valid_fade_in(value: float) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, float) and 0 < value < 1)
