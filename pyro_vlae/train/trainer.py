"""Stochastic variational inference for a :class:`~pyro_vlae.models.LatentModel`."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Any

import pyro
import torch
from pyro.infer import JitTrace_ELBO, JitTraceMeanField_ELBO, Trace_ELBO, TraceMeanField_ELBO
from pyro.nn import PyroModule
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..models.base import ELBOS, LatentModel, named_store_params
from .batches import BatchSource
from .compiled import CompiledStep, CUDAGraphStep, surrogate_loss
from .schedule import KLWarmup, LayerFadeIn
from .steps import compiled_part, make_step, step_kind


class _JitTraceMeanField_ELBO(JitTraceMeanField_ELBO):
    """:class:`~pyro.infer.JitTraceMeanField_ELBO` that keeps its trace.

    Pyro 1.9's ``differentiable_loss`` tests ``_loss_and_surrogate_loss`` before compiling but
    stores ``_differentiable_loss``, so it builds a new compiled function, and retraces, on
    every call; aliasing the one attribute to the other keeps the first.
    """

    def differentiable_loss(self, model, guide, *args, **kwargs):
        loss = super().differentiable_loss(model, guide, *args, **kwargs)
        self._loss_and_surrogate_loss = self._differentiable_loss
        return loss


#: Pyro's ELBO classes, plain and JIT-compiled, for each name of :data:`~pyro_vlae.models.base.ELBOS`
#: (in that order: Monte-Carlo, then mean-field)
ELBO_CLASSES: dict[str, tuple[type[Trace_ELBO], type[Trace_ELBO]]] = dict(
    zip(ELBOS, [(Trace_ELBO, JitTrace_ELBO), (TraceMeanField_ELBO, _JitTraceMeanField_ELBO)], strict=True)
)


def make_elbo(name: str, num_particles: int = 1, jit: bool = False) -> Trace_ELBO:
    """``"trace"``: Monte-Carlo ELBO (:class:`~pyro.infer.Trace_ELBO`); ``"meanfield"``:
    analytic KL terms (:class:`~pyro.infer.TraceMeanField_ELBO`), valid when the guide's
    latent sites are conditionally independent given the data plate's site structure.

    With ``jit`` the JIT-compiled variants (:class:`~pyro.infer.JitTrace_ELBO`,
    :class:`~pyro.infer.JitTraceMeanField_ELBO`): model and guide are traced once per set of
    non-tensor arguments, so every changing input (the batch, β) must be a tensor.
    The models use one plate (``"data"``, dim −1), hence ``max_plate_nesting=1``.
    """
    if name not in ELBO_CLASSES:
        raise ConfigError(f"unknown ELBO {name!r}", f"use one of: {', '.join(ELBOS)}")
    options = {"ignore_jit_warnings": True} if jit else {}
    return ELBO_CLASSES[name][jit](num_particles=num_particles, max_plate_nesting=1, **options)


def register_params(module: PyroModule) -> None:
    """Put ``module``'s own parameters in Pyro's global param store, under the names its
    param statements give them (:func:`~pyro_vlae.models.base.named_store_params`).

    Pyro's JIT ELBO (:func:`pyro.ops.jit.trace`) passes ``pyro.param(name).unconstrained()``
    of every parameter to the trace as an input, while the networks read their own. A param
    statement stores a contiguous copy of a new parameter (a channels-last convolution
    weight's is another tensor) and keeps whatever the store already holds under its name (a
    parameter of an earlier model of the same names); either way the trace meets a weight
    that is not one of its inputs ("Cannot insert a Tensor that requires grad as a
    constant"). :meth:`~pyro.params.param_store.ParamStoreDict.set_state` stores the
    tensors as they are.
    """

    named = named_store_params(module)
    state = {"params": {n: p for n, p, _ in named}, "constraints": {n: c for n, _, c in named}}
    pyro.get_param_store().set_state(state)


def plain_methods(model: LatentModel) -> tuple[Callable, Callable]:
    """``model.model`` and ``model.guide`` without the parameter statements of their
    :class:`~pyro.nn.PyroModule` context.

    Inside a ``pyro_method`` every read of a network attribute registers all of that network's
    parameters with Pyro (one ``param`` message each through every handler, dozens per step),
    which the ELBO ignores: its loss is made of the sample sites alone. Called as plain
    methods, model and guide issue the very same sample sites. That is only equivalent when no
    :class:`~pyro.nn.PyroParam` or :class:`~pyro.nn.PyroSample` attribute depends on the
    context; a model with any keeps its decorated methods.
    """
    managed = any(
        isinstance(m, PyroModule) and (m._pyro_params or m._pyro_samples) for m in model.modules()
    )
    if managed:
        return model.model, model.guide
    cls = type(model)
    return functools.partial(inspect.unwrap(cls.model), model), functools.partial(inspect.unwrap(cls.guide), model)


class ScaledPair(torch.nn.Module):
    """A :class:`LatentModel`'s model and guide on a mini-batch scaled to ``num_data``, as one
    module: ``forward(x, β)`` is the model, :meth:`guide` the guide, and the parameters are the
    latent model's (so Pyro's ELBO module, and DistributedDataParallel around it, find them).
    β is positional, so a JIT ELBO traces it as an input.

    :param plain: call model and guide as plain methods (:func:`plain_methods`), without the
        parameter statements a JIT ELBO needs.
    """

    def __init__(self, latent: LatentModel, num_data: int, plain: bool = False) -> None:
        super().__init__()
        self.latent = latent
        self.num_data = int(num_data)
        self.model_fn, self.guide_fn = plain_methods(latent) if plain else (latent.model, latent.guide)

    def forward(self, x: Tensor, beta: Tensor) -> Tensor:
        return self.model_fn(x, num_data=self.num_data, beta=beta)

    def guide(self, x: Tensor, beta: Tensor) -> None:
        self.guide_fn(x, num_data=self.num_data, beta=beta)


def _check_options(model: LatentModel, num_data: int, batch_size: int, bf16: bool, jit: bool) -> None:
    """Refuse a batch larger than the data and bf16 where it does not apply."""
    if batch_size > num_data:
        raise ConfigError(
            f"batch size {batch_size} exceeds the {num_data} training points",
            f"use a batch size of at most {num_data}",
        )
    if bf16 and model.device.type != "cuda":
        raise ConfigError(
            "bf16 autocast is only used on CUDA, but the model is on the CPU",
            "drop --bf16, or train with --device cuda",
        )
    if bf16 and jit:
        raise ConfigError(
            "--bf16 and --jit do not combine (a JIT trace would freeze the autocast casts)",
            "drop one of them",
        )


def _memory_format(model: LatentModel, data: Tensor | Dataset, channels_last: bool | None) -> Tensor | Dataset:
    """The data (and, in place, the model's weights) in the channels-last memory format where
    it applies: images, and by default (``None``) on CUDA only."""
    images = len(model.x_shape) == 3
    if channels_last is None:
        channels_last = model.device.type == "cuda" and images
    if channels_last and images:
        model.to(memory_format=torch.channels_last)
        if torch.is_tensor(data):
            return data.contiguous(memory_format=torch.channels_last)
    return data


class Trainer:
    """Mini-batch SVI with KL warm-up over data held as one tensor, or streamed from a
    :class:`~pyro_vlae.data.StreamData` (a torch Dataset) by its DataLoader.

    Each step draws a batch (a fixed permutation per epoch, seeded by ``seed`` and the epoch
    number, so a resumed run sees the same batches), looks β up in the warm-up schedule and
    takes one Adam step on Pyro's ``elbo.differentiable_loss(model, guide, x, β)`` (the ELBO
    of eq. 2 with the batch scaled to ``num_data``; Pyro's recipe for custom optimisers).

    The hot loop keeps Pyro's per-step work to the ELBO itself: validation is off (the data
    is checked once, by :meth:`LatentModel.check_data`), model and guide run without
    registering their networks' parameters (:func:`plain_methods`), the loss is Pyro's
    surrogate read back never (:func:`~pyro_vlae.train.compiled.surrogate_loss`), one fused
    ``torch.optim.Adam`` updates the model's parameters, β comes from a schedule held on the
    model's device and :meth:`train_step` returns the loss as a tensor, so no step waits for
    the device.

    Compiled steps (``compile``): on CUDA the whole step is captured once in a CUDA graph and
    replayed (:class:`~pyro_vlae.train.compiled.CUDAGraphStep`, the default there); elsewhere
    loss and gradients are traced once and compiled by :func:`torch.compile`
    (:class:`~pyro_vlae.train.compiled.CompiledStep`, opt-in: compiling takes a minute or more,
    more than it saves in a default run unless Inductor's cache already holds it; a step that
    cannot be compiled is announced and runs eagerly).

    :param model: the Pyro model/guide pair; every trainable parameter is one of its
        ``parameters()`` (``PyroModule`` networks and likelihood).
    :param data: training data ``(N, ...)``, already on the model's device; or a
        :class:`~pyro_vlae.data.StreamData`, read batch by batch (same batches for the same seed).
    :param transform: applied to every batch on the device, e.g. ``torch.bernoulli``.
    :param clip_norm: clip each parameter's gradient norm to this value, in units of the
        per-data-point loss (the loss itself is scaled to the data-set size).
    :param fade_in: fade the model's latent layers in from the top down
        (:class:`~pyro_vlae.train.LayerFadeIn`), through the model's
        :meth:`~pyro_vlae.models.LatentModel.set_layer_gates` before every step; a model
        without ladder paths (any but the VLAE) refuses it.
    :param jit: trace model and guide once with :class:`~pyro.infer.JitTrace_ELBO` (or
        :class:`~pyro.infer.JitTraceMeanField_ELBO`); β is a tensor input of the trace, so a
        warm-up schedule does not retrace. The model's parameters are put in Pyro's param
        store, where the trace finds them (:func:`register_params`). Built on the deprecated
        ``torch.jit.trace``; ``compile`` is its successor.
    :param compile: ``True``: a compiled step (CUDA graph on CUDA, ``torch.compile``
        elsewhere); ``False``: the eager step; ``None``: the CUDA graph on CUDA (unless ``jit``),
        the eager step elsewhere.
    :param bf16: CUDA only: run the networks under bfloat16 autocast (log-densities and the
        optimiser stay in float32).
    :param channels_last: keep 4-D data and convolution weights in the channels-last memory
        format (``None``: on CUDA for images, where cuDNN's fast kernels want it).
    """

    def __init__(
        self,
        model: LatentModel,
        data: Tensor | Dataset,
        *,
        batch_size: int = 100,
        lr: float = 2e-4,
        warmup: KLWarmup | None = None,
        fade_in: LayerFadeIn | None = None,
        elbo: str = "trace",
        num_particles: int = 1,
        clip_norm: float | None = None,
        seed: int = 0,
        transform: Callable[[Tensor], Tensor] | None = None,
        jit: bool = False,
        bf16: bool = False,
        channels_last: bool | None = None,
        compile: bool | None = None,
    ) -> None:
        _check_options(model, len(data), batch_size, bf16, jit)
        #: the kind of step (:data:`~pyro_vlae.train.steps.STEP_KINDS`)
        self.kind = step_kind(self, model.device, jit, compile)
        model.check_elbo(elbo)
        data = _memory_format(model, data, channels_last)
        self.model = model.train()
        self.data = data
        self.batch_size = int(batch_size)
        self.warmup = warmup or KLWarmup()
        self.seed = int(seed)
        self.num_data = len(data)
        self.batches = BatchSource(data, self.batch_indices, model.device, transform, self.seed)
        self.streamed = self.batches.streamed
        self.batches_per_epoch = self.num_data // self.batch_size
        self.clip_norm = clip_norm * self.num_data if clip_norm else None
        self.bf16 = bool(bf16)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optim = torch.optim.Adam(self.params, lr=lr, fused=True, capturable=self.kind == "cuda-graph")
        self.elbo = make_elbo(elbo, num_particles, jit)
        if jit:  # the JIT ELBO reads the parameters it traces as inputs from Pyro's param store
            register_params(model)
        # Pyro's JIT ELBO finds the parameters to trace as inputs by their param statements
        self.pair = ScaledPair(model, self.num_data, plain=not jit)
        # one bound method each: the JIT ELBO keys its cache on their ids
        self._model_fn, self._guide_fn = self.pair.forward, self.pair.guide
        self._step = make_step(self, self.kind)
        #: the compiled step, if any: a CUDAGraphStep or a CompiledStep
        self.compiled: CUDAGraphStep | CompiledStep | None = compiled_part(self._step)
        # β for every step of the warm-up (the last entry holds from then on), on the device
        self.betas = torch.tensor([self.warmup(s) for s in range(self.warmup.steps + 1)], device=model.device)
        # the layer gates of every step of the fade-in (the last row holds from then on)
        self.layer_gates = None
        if fade_in is not None and fade_in.stage_steps > 0:
            end = fade_in.end(model.num_layers)
            self.layer_gates = torch.stack([fade_in(s, model.num_layers) for s in range(end + 1)]).to(model.device)
            model.set_layer_gates(self.layer_gates[0])  # a model without ladder paths refuses
        self.step_count = 0
        self._epoch: int | None = None
        self._perm: Tensor | None = None

    #: whether this trainer offers compiled steps (the data-parallel one does not)
    supports_compile = True

    # ------------------------------------------------------------------ batches
    def batch_indices(self, step: int) -> Tensor:
        """Indices of the batch used at ``step`` (deterministic in seed and step)."""
        epoch, i = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.num_data, generator=g)
            if not self.streamed:
                self._perm = self._perm.to(self.data.device)
            self._epoch = epoch
        return self._perm[i * self.batch_size : (i + 1) * self.batch_size]

    def batch(self, step: int | None = None) -> Tensor:
        """The batch of ``step`` (default: the next one), transformed, on the model's device."""
        return self.batches[self.step_count if step is None else step]

    # --------------------------------------------------------------------- step
    def differentiable_loss(self, x: Tensor, beta: Tensor) -> Tensor:
        """Pyro's differentiable ELBO loss (eq. 2, negated) of the batch ``x``, scaled to
        ``num_data``: ``elbo.differentiable_loss``'s value and gradient, read back never (the
        JIT ELBO's own, which it traces once; the loss a compiled step traces)."""
        if self.kind == "jit":
            return self.elbo.differentiable_loss(self._model_fn, self._guide_fn, x, beta)
        return surrogate_loss(self.elbo, self._model_fn, self._guide_fn, x, beta)

    def _autocast(self) -> contextlib.AbstractContextManager:
        # no weight-cast cache: it would outlive a CUDA-graph capture
        if self.bf16:
            return torch.autocast("cuda", torch.bfloat16, cache_enabled=self.compiled is None)
        return contextlib.nullcontext()

    def _zero_grad(self) -> None:
        self.optim.zero_grad(set_to_none=True)

    def _clip_and_step(self) -> None:
        if self.clip_norm is not None:
            for p in self.params:
                torch.nn.utils.clip_grad_norm_(p, self.clip_norm)
        self.optim.step()

    def _update(self, x: Tensor, beta: Tensor) -> Tensor:
        """Loss, backward pass and Adam step on ``x``; the loss per data point."""
        with pyro.validation_enabled(False), self._autocast():
            loss = self.differentiable_loss(x, beta)
        loss.backward()
        self._clip_and_step()
        return loss.detach() / self.num_data

    def train_step(self) -> Tensor:
        """One optimisation step; returns the β-weighted loss per data point as a 0-d
        tensor on the model's device (reading it is the only host–device sync)."""
        x = self.batches.next(self.step_count)
        beta = self.betas[min(self.step_count, self.warmup.steps)]
        if self.layer_gates is not None:
            self.model.set_layer_gates(self.layer_gates[min(self.step_count, len(self.layer_gates) - 1)])
        loss = self._step(x, beta)
        self.step_count += 1
        return loss

    def step(self) -> float:
        """One step, as :meth:`train_step`, with the loss per data point as a float."""
        return float(self.train_step())

    @property
    def beta(self) -> float:
        return self.warmup(self.step_count)

    # -------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step_count,
            "model": self.model.state_dict(),
            "optim": self.optim.state_dict(),
            "rng_cpu": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and self.model.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.model.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        # keep this trainer's Adam implementation (fused, capturable), whatever saved the state
        flags = [{k: g[k] for k in ("fused", "capturable", "foreach") if k in g} for g in self.optim.param_groups]
        self.optim.load_state_dict(state["optim"])
        for group, saved in zip(self.optim.param_groups, flags):
            group.update(saved)
        if isinstance(self.compiled, CUDAGraphStep):
            self.compiled.reset()  # the graph holds the old optimiser state's tensors
        self.step_count = int(state["step"])
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and self.model.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], self.model.device)
        self.batches.reset()


