"""The full configuration of a training run, saved with every checkpoint: :class:`RunConfig`,
composed of one spec per owner (:mod:`pyro_vlae.specs`), read and written flat.

A run folder's ``config.json`` holds one flat key per option (``steps``, ``z_dims``, ...), the
keys of :data:`OWNERS`. A :class:`RunConfig` is built from such keys, and each key reads back
as a (read-only) attribute: ``config.steps`` is ``config.training.steps``.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .specs import DataSpec, LikelihoodSpec, ModelSpec, RunSettings, TrainingSpec
from .train.schedule import LayerFadeIn

#: the run settings each invocation of ``fit`` gives anew: a resumed run takes them from its
#: own command line, never from the run it continues
INVOCATION = ("tracker", "log_images_every", "dist_timeout")
#: options a resumed run may change; everything else comes from the checkpoint
RESUMABLE = ("steps", "epochs", "device", "checkpoint_every", "log_every", "data_dir", *INVOCATION)


@dataclass(init=False)
class RunConfig:
    """Everything that determines a run, one spec per owner, built from flat options:
    ``RunConfig(plugin="mnist", z_dims=(2, 2), steps=1000)`` gives each option to the spec
    that owns it (:data:`OWNERS`), and every option left out takes its default. ``None`` in a
    spec means "the data set's recommendation, else the library default" and is resolved by
    :meth:`resolve`."""

    data: DataSpec
    model_spec: ModelSpec
    likelihood_spec: LikelihoodSpec
    training: TrainingSpec
    settings: RunSettings

    #: the library defaults of the options that are ``None`` until resolved (``pyro-vlae plugins NAME``)
    DEFAULTS = {**ModelSpec.DEFAULTS, **TrainingSpec.DEFAULTS}

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(OWNERS)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        options = {k: tuple(v) if k in _TUPLES and v is not None else v for k, v in options.items()}
        for part, spec in _PARTS.items():
            setattr(self, part, spec(**{k: v for k, v in options.items() if OWNERS[k] == part}))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """The configuration of a ``config.json``'s flat options ``d`` (an older file's
        missing keys take their defaults)."""
        return cls(**d)

    def options(self) -> dict[str, Any]:
        """Every flat option, by key, in the order of the specs."""
        return {key: getattr(getattr(self, part), key) for key, part in OWNERS.items()}

    def replace(self, **options: Any) -> RunConfig:
        """A copy with the flat ``options`` changed."""
        return RunConfig(**{**self.options(), **options})

    def to_dict(self) -> dict[str, Any]:
        """The flat options, as ``config.json`` holds them (``z_dims`` and ``kl_weights`` as lists)."""
        d = copy.deepcopy(self.options())
        return {k: list(v) if k in ("z_dims", "kl_weights") and v is not None else v for k, v in d.items()}

    @staticmethod
    def default(key: str) -> Any:
        """The value the option ``key`` holds when nobody sets it, from the spec that owns it
        (``None``: the data set's recommendation, else :attr:`DEFAULTS`)."""
        spec_field = next(f for f in dataclasses.fields(_PARTS[OWNERS[key]]) if f.name == key)
        return spec_field.default_factory() if spec_field.default is dataclasses.MISSING else spec_field.default

    @staticmethod
    def hints() -> dict[str, Any]:
        """The type of every flat option, by key (a configuration file is checked against them)."""
        return {k: typing.get_type_hints(_PARTS[part])[k] for k, part in OWNERS.items()}

    def resolve(
        self,
        recommended: dict[str, Any],
        default_likelihood: str,
        num_data: int,
        value_range: Sequence[float] | None = None,
    ) -> RunConfig:
        """A copy with every ``None`` filled by the spec that owns it from the data set's
        ``recommended`` settings (its recipe for this model,
        :meth:`~pyro_vlae.data.DatasetPlugin.recommended_for`), ``default_likelihood`` and the
        data's ``value_range`` (:meth:`LikelihoodSpec.resolve`), then the library defaults;
        ``epochs`` is turned into ``steps`` of ``num_data`` points (:meth:`TrainingSpec.resolve`)
        and a fractional fade-in into steps per layer. Raises :class:`ConfigError` on bad values."""
        model_spec = self.model_spec.resolve(recommended)
        specs = (
            self.data.resolve(),
            model_spec,
            self.likelihood_spec.resolve(recommended, default_likelihood, value_range),
            self.training.resolve(recommended, model_spec.model, num_data),
            self.settings,
        )
        c = RunConfig(**{f.name: getattr(spec, f.name) for spec in specs for f in dataclasses.fields(spec)})
        c.validate(num_data)
        return c.replace(fade_in=LayerFadeIn.stage_for(c.fade_in, c.steps, len(c.z_dims)))

    def validate(self, num_data: int | None = None) -> None:
        """Raise :class:`ConfigError` naming the first invalid option, the checks of every spec
        in turn. Options of the command line are named as such (``--beta``); the others as
        keys of :class:`RunConfig`."""
        if self.steps is not None and self.epochs is not None:
            raise ConfigError("--steps and --epochs exclude each other", "give one of them")
        checks = [check for part in _PARTS for check in getattr(self, part).checks()]
        checks.append((not self.bf16 or self.device != "cpu", "--bf16 needs a CUDA device (drop it with --device cpu)"))
        for ok, message in checks:
            if not ok:
                fix = "set it in the RunConfig" if message.startswith("RunConfig.") else "see `pyro-vlae fit --help`"
                raise ConfigError(f"invalid option: {message}", fix)
        if num_data is not None and self.batch_size is not None and self.batch_size > num_data:
            raise ConfigError(
                f"--batch-size {self.batch_size} is larger than the data set ({num_data} items)",
                f"use --batch-size {num_data} or less",
            )
        self.settings.check_tracker()

    def resume(self, saved: RunConfig, given: Mapping[str, Any]) -> RunConfig:
        """The configuration a resumed run continues: ``saved`` (its checkpoint's) with the
        :data:`RESUMABLE` options ``given`` (on the command line or in a file; ``data_dir`` may
        name the folder the data moved to) and this invocation's :data:`INVOCATION` settings;
        any other option given with a value other than the saved one is an error."""
        for key, value in given.items():
            if key not in RESUMABLE and _plain(value) != _plain(getattr(saved, key)):
                raise ConfigError(
                    f"--resume continues the saved configuration, but {key} was given as "
                    f"{value!r} (saved: {getattr(saved, key)!r})",
                    f"drop that option, or start a new run with --out; resumable: {', '.join(RESUMABLE)}",
                )
        changes = {k: v for k, v in given.items() if k in RESUMABLE}
        return saved.replace(**{**changes, **{k: getattr(self, k) for k in INVOCATION}})

    def model_options(self) -> dict[str, Any]:
        """The options this run's model class declares beyond those every model takes
        (:meth:`ModelSpec.model_options`: the VLAE's ``combine``, ``heads``, ``kl_weights``,
        ``z_norm``), where set."""
        return self.model_spec.model_options()


def _plain(value: Any) -> Any:
    """``value`` with every list a tuple, so that a value read from a file compares equal."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


#: the spec of each part of a :class:`RunConfig`
_PARTS: dict[str, type] = typing.get_type_hints(RunConfig)
#: every flat option (a key of ``config.json``) and the part of :class:`RunConfig` that owns it
OWNERS: dict[str, str] = {f.name: part for part, spec in _PARTS.items() for f in dataclasses.fields(spec)}
#: the options given as lists and held as tuples
_TUPLES = ("z_dims", "kl_weights", "value_range")


def _flat(key: str) -> property:
    """The read-only attribute ``config.KEY``: the option ``key`` of the spec that owns it."""
    part = OWNERS[key]
    return property(lambda self: getattr(getattr(self, part), key), doc=f"``{part}.{key}`` (read-only).")


for _key in OWNERS:
    setattr(RunConfig, _key, _flat(_key))
