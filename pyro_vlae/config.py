"""The full configuration of a training run, saved with every checkpoint."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

ELBOS = ("trace", "meanfield")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class RunConfig:
    """Everything that determines a run. ``None`` means "the data set's recommendation,
    else the library default" and is resolved by :meth:`resolve`."""

    plugin: str = "shapes"
    plugin_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    model: str = "vlae"
    z_dims: tuple[int, ...] | None = None
    stem: str = "auto"
    width: float | None = None
    likelihood: str | None = None
    likelihood_options: dict[str, Any] | None = None
    steps: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup_steps: int | None = None
    beta_start: float = 1e-3
    beta: float = 1.0
    elbo: str = "trace"
    combine: str | None = None
    heads: str | None = None
    fade_in: int | None = None
    num_particles: int = 1
    clip_norm: float | None = None
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    jit: bool = False
    bf16: bool = False

    DEFAULTS = {
        "z_dims": (2, 2, 2),
        "width": 1.0,
        "batch_size": 100,
        "lr": 2e-4,
        "steps": 10000,
        "warmup_steps": 2000,
    }
    #: VLAE-only options (:class:`~pyro_vlae.models.VLAE`, :class:`~pyro_vlae.train.LayerFadeIn`) and their defaults
    VLAE_DEFAULTS = {"combine": "concat", "heads": "linear", "fade_in": 0}

    def resolve(self, recommended: dict[str, Any], default_likelihood: str, num_data: int) -> RunConfig:
        """A copy with every ``None`` filled from ``recommended``, then the library defaults;
        ``epochs`` is turned into ``steps``. Raises :class:`ConfigError` on bad values."""
        c = dataclasses.replace(self)
        for key, default in self.DEFAULTS.items():
            if getattr(c, key) is None:
                setattr(c, key, recommended.get(key, default))
        if c.likelihood is None:
            c.likelihood = default_likelihood
        if c.likelihood_options is None:
            # the data set recommends options for its own likelihood only
            own = c.likelihood == default_likelihood
            c.likelihood_options = dict(recommended.get("likelihood_options", {}) if own else {})
        for key, default in self.VLAE_DEFAULTS.items():
            if c.model != "vlae":
                if getattr(c, key) not in (None, default):
                    option = "--" + key.replace("_", "-")
                    raise ConfigError(f"{option} applies to the VLAE only, not to --model {c.model}", f"drop {option}")
                setattr(c, key, default)
            elif getattr(c, key) is None:
                setattr(c, key, recommended.get(key, default))
        c.z_dims = tuple(int(d) for d in c.z_dims)
        if c.epochs is not None:
            if not c.epochs > 0:
                raise ConfigError(f"--epochs must be positive, got {c.epochs}")
            c.steps = max(1, math.ceil(c.epochs * num_data / c.batch_size))
            c.epochs = None
        c.validate(num_data)
        return c

    def validate(self, num_data: int | None = None) -> None:
        checks = [
            (self.steps is None or self.steps >= 1, "--steps must be at least 1"),
            (self.batch_size is None or self.batch_size >= 2,
             "--batch-size must be at least 2 (batch norm needs two samples)"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (self.warmup_steps is None or self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (0 < self.beta_start <= self.beta, "need 0 < beta_start <= beta (poutine.scale refuses 0)"),
            (self.elbo in ELBOS, f"--elbo must be one of {', '.join(ELBOS)}"),
            (self.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}"),
            (self.num_particles >= 1, "--num-particles must be at least 1"),
            (self.clip_norm is None or self.clip_norm > 0, "--clip-norm must be positive"),
            (self.checkpoint_every >= 1 and self.log_every >= 1,
             "--checkpoint-every and --log-every must be at least 1"),
            (self.z_dims is None or (len(self.z_dims) > 0 and min(self.z_dims) >= 1),
             "--z-dims must be positive integers, e.g. 2,2,2"),
            (self.width is None or self.width > 0, "--width must be positive"),
            (self.fade_in is None or self.fade_in >= 0, "--fade-in must be >= 0"),
            (self.epochs is None or self.epochs > 0, "--epochs must be positive"),
            (not self.bf16 or self.device != "cpu", "--bf16 needs a CUDA device (drop it with --device cpu)"),
            ("data_dir" not in self.plugin_options, "give the data folder with --data-dir, not -P data_dir"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid option: {message}", "see `pyro-vlae fit --help`")
        if num_data is not None and self.batch_size is not None and self.batch_size > num_data:
            raise ConfigError(
                f"--batch-size {self.batch_size} is larger than the data set ({num_data} items)",
                f"use --batch-size {num_data} or less",
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["z_dims"] = list(self.z_dims) if self.z_dims is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        if d.get("z_dims") is not None:
            d["z_dims"] = tuple(d["z_dims"])
        return cls(**d)
