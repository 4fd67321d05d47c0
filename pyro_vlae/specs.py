"""The options of a training run, one typed spec per owner: :class:`DataSpec`,
:class:`ModelSpec`, :class:`LikelihoodSpec`, :class:`TrainingSpec` and :class:`RunSettings`.

Each spec writes the default of each of its options once: a field's default is the value an
option holds when nobody sets it; ``None`` means "the data set's recommendation, else the
library default", which the spec's ``DEFAULTS`` (or, for an option a model class declares,
:func:`~pyro_vlae.models.model_options`) holds and its ``resolve`` fills in. Each spec's
``checks`` names its invalid options; :class:`~pyro_vlae.config.RunConfig` composes them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from . import plugins
from .devices import DEVICES, is_device
from .errors import ConfigError
from .likelihoods import Likelihood
from .models import MODELS, VLAE, LatentModel, build_model, model_options
from .models.base import DEFAULT_Z_DIMS, ELBOS, check_z_dims
from .tracking import TRACKERS, require_tracker
from .train.distributed import DEFAULT_TIMEOUT

#: a failed check: whether it holds, and the message naming the option when it does not
Check = tuple[bool, str]

#: every option some model class declares beyond the shared ones, with its default
#: (:func:`~pyro_vlae.models.model_options`: the VLAE's ``combine``, ``heads``, ``kl_weights``, ``z_norm``)
MODEL_OPTIONS: dict[str, Any] = {k: v for cls in MODELS.values() for k, v in model_options(cls).items()}


#: the models with ladder paths that a fade-in opens: those whose class has its own
#: :meth:`~pyro_vlae.models.LatentModel.set_layer_gates` (the VLAE)
FADING_IN = [name for name, cls in MODELS.items() if cls.set_layer_gates is not LatentModel.set_layer_gates]


def own_option(
    spec: Any, key: str, default: Any, model: str, takers: Sequence[str], recommended: Mapping[str, Any]
) -> Any:
    """The resolved value of ``spec``'s option ``key`` that only the models ``takers`` take: for
    one of them, the value given, else the data set's recommendation, else ``default``; for
    another model ``default``, and a :class:`ConfigError` if another value was given."""
    value = getattr(spec, key)
    if model in takers:
        return recommended.get(key, default) if value is None else value
    if value not in (None, default):
        option = "--" + key.replace("_", "-")
        only = " and the ".join(name.upper() for name in takers)
        raise ConfigError(f"{option} applies to the {only} only, not to --model {model}", f"drop {option}")
    return default


@dataclass
class DataSpec:
    """The data set: its plugin (``--plugin``), the plugin's options (``-P``) and its folder."""

    plugin: str = "shapes"
    plugin_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None

    def resolve(self) -> DataSpec:
        """A copy whose ``data_dir`` is absolute, so that the run finds its data from any folder."""
        if self.data_dir is None:
            return dataclasses.replace(self)
        return dataclasses.replace(self, data_dir=str(Path(self.data_dir).expanduser().resolve()))

    def checks(self) -> list[Check]:
        """The checks of these options: (holds, message naming the option) pairs."""
        return [("data_dir" not in self.plugin_options, "give the data folder with --data-dir, not -P data_dir")]


@dataclass
class ModelSpec:
    """The model (``--model``) and its networks: the latent widths, the stem, the width
    multiplier and the options its class declares (:data:`MODEL_OPTIONS`)."""

    model: str = "vlae"
    z_dims: tuple[int, ...] | None = None
    stem: str | None = None
    width: float | None = None
    combine: str | None = None
    heads: str | None = None
    z_norm: str | None = None
    kl_weights: tuple[float, ...] | None = None

    #: the library defaults of the options that are ``None`` until resolved
    DEFAULTS: ClassVar[dict[str, Any]] = {"z_dims": DEFAULT_Z_DIMS, "stem": "auto", "width": 1.0}

    def resolve(self, recommended: Mapping[str, Any]) -> ModelSpec:
        """A copy with every ``None`` filled from the data set's ``recommended`` settings, then
        the library defaults; an option of another model class than this one is refused
        unless at its default, and set to it. Raises :class:`ConfigError` on bad values."""
        filled = {k: recommended.get(k, d) for k, d in self.DEFAULTS.items() if getattr(self, k) is None}
        for key, default in MODEL_OPTIONS.items():
            takers = [name for name, cls in MODELS.items() if key in model_options(cls)]
            filled[key] = own_option(self, key, default, self.model, takers, recommended)
        spec = dataclasses.replace(self, **filled)
        spec.z_dims = check_z_dims(spec.z_dims)
        if spec.kl_weights is not None:
            VLAE.check_kl_weights(spec.kl_weights, len(spec.z_dims))
        return spec

    def model_options(self) -> dict[str, Any]:
        """The options this model's class declares beyond those every model takes
        (:func:`~pyro_vlae.models.model_options`), where set."""
        declared = model_options(MODELS[self.model]) if self.model in MODELS else {}
        return {k: getattr(self, k) for k in declared if getattr(self, k) is not None}

    def build(self, x_shape: Sequence[int], likelihood: Likelihood) -> LatentModel:
        """The model of a resolved spec for data of shape ``x_shape``, observing ``likelihood``."""
        return build_model(self.model, x_shape, self.z_dims, likelihood, self.stem, self.width, **self.model_options())

    def checks(self) -> list[Check]:
        """The checks of these options: (holds, message naming the option) pairs; an invalid
        ``z_dims`` raises at once."""
        if self.z_dims is not None:
            check_z_dims(self.z_dims)
        return [
            (self.width is None or self.width > 0, "--width must be positive"),
            (self.width is None or math.isfinite(self.width), "--width must be a finite number"),
        ]


@dataclass
class LikelihoodSpec:
    """The decoder likelihood r(x; θ): its plugin (``--likelihood``), options (``-L``) and the
    data's range ``(low, high)``, its ``value_range``: the data set's, or ``-L value_range=...``;
    held here so that a run folder rebuilds its model without the data set."""

    likelihood: str | None = None
    likelihood_options: dict[str, Any] | None = None
    value_range: tuple[float, float] | None = None

    def resolve(
        self, recommended: Mapping[str, Any], default_likelihood: str, value_range: Sequence[float] | None = None
    ) -> LikelihoodSpec:
        """A copy naming a likelihood (no ``--likelihood``: the data set's ``default_likelihood``
        with its recommended options) and holding the ``value_range`` once: the one given as a
        likelihood option moves here, else the data set's ``value_range``."""
        name = default_likelihood if self.likelihood is None else self.likelihood
        options = self.likelihood_options
        if options is None:  # the data set recommends options for its own likelihood only
            options = recommended.get("likelihood_options", {}) if name == default_likelihood else {}
        options = dict(options)
        held = self.value_range
        if "value_range" in options:
            held = tuple(float(v) for v in options.pop("value_range"))
        elif held is None and value_range is not None:
            held = tuple(float(v) for v in value_range)
        return LikelihoodSpec(name, options, held)

    def checks(self) -> list[Check]:
        """None: the likelihood plugin checks its own options when it is built (:meth:`build`)."""
        return []

    def build(self) -> Likelihood:
        """The likelihood of a resolved spec, by its entry point (:func:`~pyro_vlae.plugins.likelihood`)."""
        options = dict(self.likelihood_options or {})
        if self.value_range is not None:
            options.setdefault("value_range", self.value_range)
        return plugins.likelihood(self.likelihood, **options)


@dataclass
class TrainingSpec:
    """How the model is trained: length, batches, Adam, the KL warm-up, the ELBO, the VLAE's
    fade-in, gradient clipping, the seed and the step's kind."""

    steps: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup_steps: int | None = None
    #: first β of the KL warm-up (not a command-line option); a smaller ``beta`` lowers it
    beta_start: float = 1e-3
    beta: float = 1.0
    elbo: str = "trace"
    #: VLAE fade-in (:class:`~pyro_vlae.train.LayerFadeIn`): steps per layer (an integer, 0: off)
    #: or a fraction in (0, 1) of the run after which every layer is fully on;
    #: :meth:`RunConfig.resolve` turns a fraction into steps per layer, so a resumed run keeps its schedule
    fade_in: int | float | None = None
    num_particles: int = 1
    clip_norm: float | None = None
    seed: int = 0
    jit: bool = False
    bf16: bool = False
    #: the compiled step (:class:`~pyro_vlae.train.Trainer`'s ``compile``): ``None`` its default
    #: (a CUDA graph on CUDA, the eager step on the CPU), ``True`` a compiled step, ``False`` eager
    compile: bool | None = None

    #: the library defaults of the options that are ``None`` until resolved
    DEFAULTS: ClassVar[dict[str, Any]] = {"batch_size": 100, "lr": 2e-4, "steps": 10000, "warmup_steps": 2000}
    #: the fade-in's default, off (for the models of :data:`FADING_IN` only)
    FADE_IN: ClassVar[int] = 0

    def resolve(self, recommended: Mapping[str, Any], model: str, num_data: int) -> TrainingSpec:
        """A copy with every ``None`` filled from the data set's ``recommended`` settings, then
        the library defaults, and ``epochs`` turned into ``steps`` (of ``num_data`` points).
        A recipe may give its budget in ``epochs`` and its KL warm-up in ``warmup_epochs``;
        the warm-up then keeps its share of the budget when ``steps`` or ``epochs`` scale the
        budget (e.g. 200 of 2000 epochs: the first tenth of any budget). The fade-in applies
        to the ``model`` if it is one of :data:`FADING_IN`."""
        spec = dataclasses.replace(self)
        if spec.steps is None and spec.epochs is None and "epochs" in recommended:
            spec.epochs = recommended["epochs"]
        warmup_share = None
        if spec.warmup_steps is None and "warmup_epochs" in recommended:
            warmup_share = recommended["warmup_epochs"] / recommended["epochs"]
        for key, default in self.DEFAULTS.items():
            if getattr(spec, key) is None:
                setattr(spec, key, recommended.get(key, default))
        spec.beta_start = min(spec.beta_start, spec.beta)  # the warm-up rises to β, or holds a smaller β
        spec.fade_in = own_option(spec, "fade_in", self.FADE_IN, model, FADING_IN, recommended)
        if spec.epochs is not None:
            if not spec.epochs > 0:
                raise ConfigError(f"--epochs must be positive, got {spec.epochs}")
            spec.steps = max(1, math.ceil(spec.epochs * num_data / spec.batch_size))
            spec.epochs = None
        if warmup_share is not None:
            spec.warmup_steps = round(warmup_share * spec.steps)
        return spec

    def checks(self) -> list[Check]:
        """The checks of these options: (holds, message naming the option) pairs."""
        finite = (self.lr, self.beta, self.clip_norm, self.epochs)
        return [
            (self.steps is None or self.steps >= 1, "--steps must be at least 1"),
            (self.batch_size is None or self.batch_size >= 2,
             "--batch-size must be at least 2 (batch norm needs two samples)"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (self.warmup_steps is None or self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (self.beta > 0, "--beta must be positive (it scales the KL terms; poutine.scale refuses 0)"),
            (self.beta_start > 0, "RunConfig.beta_start, the first β of the warm-up, must be positive"),
            (self.elbo in ELBOS, f"--elbo must be one of {', '.join(ELBOS)}"),
            (self.num_particles >= 1, "RunConfig.num_particles must be at least 1"),
            (self.clip_norm is None or self.clip_norm > 0, "--clip-norm must be positive"),
            (self.fade_in is None or _valid_fade_in(self.fade_in),
             "--fade-in must be a whole number of steps per layer (0: off) or a fraction of the run in (0, 1)"),
            (self.epochs is None or self.epochs > 0, "--epochs must be positive"),
            (all(v is None or math.isfinite(v) for v in finite),
             "--lr, --beta, --clip-norm and --epochs must be finite numbers"),
            (isinstance(self.seed, int) and 0 <= self.seed < 2**32, "--seed must be an integer from 0 to 4294967295"),
        ]


@dataclass
class RunSettings:
    """Where and how a run is carried out, which never changes what it learns: the device,
    how often it saves and logs, the tracker (``--log``) and its pictures, and how long a
    process of a data-parallel run waits for the others."""

    device: str = "auto"
    checkpoint_every: int = 500
    log_every: int = 50
    #: also write metrics to this tracker (:data:`~pyro_vlae.tracking.TRACKERS`); ``None``: none
    tracker: str | None = None
    #: with a tracker: its per-layer grids every this many steps (0: at the end only)
    log_images_every: int = 500
    #: under ``torchrun``: seconds a process waits for the others (:mod:`pyro_vlae.train.distributed`)
    dist_timeout: float = DEFAULT_TIMEOUT

    def checks(self) -> list[Check]:
        """The checks of these options: (holds, message naming the option) pairs."""
        return [
            (is_device(self.device), f"--device must be one of {', '.join(DEVICES)} or cuda:N"),
            (self.checkpoint_every >= 1 and self.log_every >= 1,
             "--checkpoint-every and --log-every must be at least 1"),
            (self.tracker is None or self.tracker in TRACKERS, f"--log must be one of {', '.join(TRACKERS)}"),
            (self.log_images_every >= 0, "--log-images-every must be >= 0"),
            (self.dist_timeout >= 1, "--dist-timeout must be at least 1 second"),
        ]

    def check_tracker(self) -> None:
        """Raise :class:`ConfigError` if the tracker's library is not installed."""
        if self.tracker is not None:
            require_tracker(self.tracker)


def _valid_fade_in(value: float) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, float) and 0 < value < 1)
