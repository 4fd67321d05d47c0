"""The training step, one strategy per kind, chosen in one place (:func:`make_step`).

Every strategy is called as ``step(x, β)``: one optimisation step on the batch ``x`` at the KL
weight β, returning the loss per data point as a 0-d tensor (never read back), with the
gradients cleared afterwards.

==============  ===========================================================================
kind            what runs
==============  ===========================================================================
``eager``       Pyro's surrogate loss, backward pass and Adam step as Python, every step
``jit``         the same with Pyro's JIT ELBO (model and guide traced once by ``torch.jit``)
``compiled``    loss and gradients traced once and compiled (:class:`~.compiled.CompiledStep`)
``cuda-graph``  the whole step captured once in a CUDA graph (:class:`~.compiled.CUDAGraphStep`)
==============  ===========================================================================
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

from ..data.files import cache_dir
from ..errors import ConfigError, FallbackWarning
from .compiled import CompiledStep, CUDAGraphStep

if TYPE_CHECKING:
    from .trainer import Trainer

#: the kinds of step, in the order of the table above
STEP_KINDS = ("eager", "jit", "compiled", "cuda-graph")


class Step(Protocol):
    """One optimisation step on ``x`` at KL weight ``beta``; the loss per data point."""

    def __call__(self, x: Tensor, beta: Tensor) -> Tensor: ...


def step_kind(trainer: Trainer, device: torch.device, jit: bool, compile: bool | None) -> str:
    """The kind of step for the trainer's options: ``jit`` asks for Pyro's JIT ELBO;
    ``compile`` ``True`` for a compiled step (a CUDA graph on CUDA), ``False`` for the eager
    one, ``None`` for the default: the CUDA graph on CUDA, the eager step elsewhere."""
    if compile and jit:
        raise ConfigError("--jit (Pyro's JIT ELBO) and a compiled step do not combine", "drop one of them")
    if compile and not trainer.supports_compile:
        raise ConfigError(f"{type(trainer).__name__} has no compiled step", "train without compiling the step")
    if jit:
        return "jit"
    if compile is None:
        compile = device.type == "cuda" and trainer.supports_compile
    if not compile:
        return "eager"
    return "cuda-graph" if device.type == "cuda" else "compiled"


class EagerStep:
    """Loss, backward pass, gradient clipping and Adam step, run as Python every step (the
    ``eager`` and ``jit`` kinds: the trainer's ELBO decides how its loss is computed)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def __call__(self, x: Tensor, beta: Tensor) -> Tensor:
        loss = self.trainer._update(x, beta)
        self.trainer._zero_grad()
        return loss


def persistent_compile_cache() -> Path:
    """Where Inductor keeps what it compiled: ``$TORCHINDUCTOR_CACHE_DIR`` if set (or already
    chosen in this process), else ``inductor/`` in the user's cache folder
    (:func:`~pyro_vlae.data.files.cache_dir`) rather than torch's default under the temporary
    folder, so that it outlives a reboot. Torch keys its entries on the traced graph (the
    model, the batch's shape and dtype, the ELBO), its own version and options; a later run
    of the same model and batch shape loads the compiled step instead of compiling it."""
    return Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor")))


class CompiledGradientStep:
    """The compiled loss and gradients of :class:`~.compiled.CompiledStep`, then the
    trainer's gradient clipping and Adam step.

    A step that cannot be compiled (no C++ compiler, an operation Inductor refuses) is
    announced with one :class:`~pyro_vlae.errors.FallbackWarning` and runs eagerly from then
    on (:attr:`failed` holds the reason)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        persistent_compile_cache()
        self.compiled = CompiledStep(trainer.model, trainer.differentiable_loss)
        self.eager = EagerStep(trainer)
        self.failed: str | None = None

    def _compiles(self, x: Tensor, beta: Tensor) -> bool:
        """Whether the compiled graph for ``x`` is ready (compiling it now if need be)."""
        if self.failed is None:
            try:
                self.compiled.prepare(x, beta)
            except Exception as err:  # compiling ran on copies: nothing to undo
                lines = str(err).strip().splitlines()
                self.failed = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
                warnings.warn(
                    f"the training step could not be compiled ({self.failed}); it runs eagerly",
                    FallbackWarning,
                    stacklevel=3,
                )
        return self.failed is None

    def __call__(self, x: Tensor, beta: Tensor) -> Tensor:
        if not self._compiles(x, beta):
            return self.eager(x, beta)
        loss, grads = self.compiled(x, beta)
        for p, g in zip(self.trainer.params, grads):
            p.grad = g
        self.trainer._clip_and_step()
        self.trainer._zero_grad()
        return loss / self.trainer.num_data


def compiled_part(step: Step) -> CUDAGraphStep | CompiledStep | None:
    """What a step compiled: its CUDA graph, its compiled loss and gradients, or nothing."""
    if isinstance(step, CUDAGraphStep):
        return step
    return step.compiled if isinstance(step, CompiledGradientStep) else None


def make_step(trainer: Trainer, kind: str) -> Step:
    """The step of ``kind`` (one of :data:`STEP_KINDS`) for ``trainer``."""
    if kind in ("eager", "jit"):
        return EagerStep(trainer)
    if kind == "compiled":
        return CompiledGradientStep(trainer)
    if kind == "cuda-graph":
        return CUDAGraphStep(trainer.model, trainer._update, trainer._zero_grad)
    raise ConfigError(f"unknown kind of training step {kind!r}", f"use one of: {', '.join(STEP_KINDS)}")
