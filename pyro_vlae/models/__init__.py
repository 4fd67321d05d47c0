"""Pyro model/guide pairs with sample sites ``z1..zL`` and ``x``."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from ..likelihoods import Likelihood
from .base import LadderModel, LatentModel
from .hvae import HVAE
from .lvae import LVAE
from .markov import MarkovHierarchy
from .vae import VAE
from .vlae import VLAE

#: models selectable with ``--model``
MODELS: dict[str, type[LatentModel]] = {"vlae": VLAE, "hvae": HVAE, "lvae": LVAE, "vae": VAE}


def model_options(cls: type[LatentModel]) -> dict[str, Any]:
    """The options a model class declares beyond those every :class:`LadderModel` takes: its
    constructor's other keyword arguments and their defaults (the VLAE's ``combine``,
    ``heads``, ``kl_weights``, ``z_norm``; none for the baselines)."""
    shared = inspect.signature(LadderModel).parameters
    return {
        name: p.default for name, p in inspect.signature(cls).parameters.items()
        if name not in shared and p.default is not inspect.Parameter.empty
    }


def build_model(
    kind: str,
    /,
    x_shape: Sequence[int],
    z_dims: Sequence[int],
    likelihood: Likelihood | None = None,
    stem: str = "auto",
    width: float = 1.0,
    **options,
) -> LatentModel:
    """The model ``kind`` (a key of :data:`MODELS`) for data of shape ``x_shape``;
    ``options`` are passed on to its constructor (e.g. the VLAE's ``combine``, ``heads``, or
    the model's ``name`` in Pyro's param store)."""
    if kind not in MODELS:
        raise ConfigError(f"unknown model {kind!r}", f"choose one of: {', '.join(MODELS)}")
    return MODELS[kind](x_shape, z_dims, likelihood, stem=stem, width=width, **options)


__all__ = [
    "MODELS", "HVAE", "LVAE", "LadderModel", "LatentModel", "MarkovHierarchy", "VAE", "VLAE", "build_model",
    "model_options",
]
