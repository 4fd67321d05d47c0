"""The training step run once through Pyro, then replayed without it.

Pyro's ELBO is a Python program: every step it runs the guide and the model under its
effect handlers, records their traces and sums the sites' log-densities. For a fixed model,
batch shape and ELBO that program always issues the same tensor operations, so it can be
recorded once and replayed:

* :class:`CompiledStep` (any device) traces the loss and its gradients with
  :func:`torch.fx.experimental.proxy_tensor.make_fx` on fake tensors (no computation, no
  random draws, no side effects) and compiles the graph with :func:`torch.compile`;
* :class:`CUDAGraphStep` (CUDA) captures the whole step (forward, backward, gradient
  clipping and a capturable fused Adam) in one CUDA graph and replays it.

Both compute Pyro's surrogate loss (:func:`surrogate_loss`): the sum that
``Trace_ELBO._differentiable_loss_particle`` (or the mean-field variant) forms from the traces,
exactly the quantity Pyro's own ``JitTrace_ELBO`` compiles. Its value equals
``elbo.differentiable_loss`` and so do its gradients.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyro
import pyro.infer.trace_elbo
import pyro.infer.trace_mean_field_elbo
import torch
from pyro.infer import Trace_ELBO
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

Loss = Callable[[Tensor, Tensor], Tensor]


def _unread(x: Tensor | numbers.Number) -> float:
    return 0.0


@contextlib.contextmanager
def no_readback() -> Iterator[None]:
    """Pyro's ELBOs without their host reads: within the block, ``torch_item`` (``x.item()``,
    which ``Trace_ELBO`` applies to every site's ``log_prob_sum`` for the float value of its
    loss, a number that a surrogate-only loss discards) returns 0.0 without touching the
    tensor. Reading a value back synchronises with the device and is refused inside
    CUDA-graph capture and fake-tensor tracing; adding up detached copies instead would cost
    tensor operations that nothing uses."""
    modules = (pyro.infer.trace_elbo, pyro.infer.trace_mean_field_elbo)
    saved = [m.torch_item for m in modules]
    try:
        for m in modules:
            m.torch_item = _unread
        yield
    finally:
        for m, f in zip(modules, saved):
            m.torch_item = f


def surrogate_loss(elbo: Trace_ELBO, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> Tensor:
    """Pyro's differentiable ELBO loss as one tensor, with no value read back: the mean over
    particles of ``elbo._differentiable_loss_particle(model_trace, guide_trace)``'s surrogate
    term, on the traces of ``elbo._get_traces`` (what ``JitTrace_ELBO`` compiles). It equals
    ``elbo.differentiable_loss(model, guide, *args, **kwargs)`` in value and gradient."""
    loss = None
    with no_readback():
        for model_trace, guide_trace in elbo._get_traces(model, guide, args, kwargs):
            particle = elbo._differentiable_loss_particle(model_trace, guide_trace)[1]
            if elbo.num_particles > 1:
                particle = particle / elbo.num_particles
            loss = particle if loss is None else loss + particle
    return loss


class _Objective(nn.Module):
    """The loss as a module holding the model, so :func:`torch.func.functional_call` can run
    it on parameters and buffers passed in as arguments."""

    def __init__(self, model: nn.Module, loss: Loss) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, x: Tensor, beta: Tensor) -> Tensor:
        return self.loss(x, beta)


class CompiledStep:
    """Loss and gradients of one step, traced once per batch shape and compiled.

    ``make_fx`` runs ``loss`` (Pyro's model, guide and ELBO) once on fake tensors with the
    model's parameters and buffers as inputs, and ``torch.autograd.grad`` adds the backward
    pass to the same graph of ATen operations; :func:`torch.compile` (Inductor) turns it into
    fused kernels. A call returns ``(loss, grads)`` and updates the batch-norm statistics in
    place. The graph is specialised to the batch's shape, dtype and device and to train/eval
    mode (a new combination is traced and compiled again, :attr:`compiles` counts them); the
    parameters, buffers, batch and β are inputs, so updating them in place never recompiles
    (the tensors are collected at tracing time: rebinding a parameter is not seen). Random
    draws are part of the graph; Inductor's generator is seeded from torch's, so a run is
    repeatable from the seed but draws other numbers than the eager step
    (``torch._inductor.config.fallback_random = True`` draws the eager step's numbers).

    :param model: the module whose parameters and buffers ``loss`` reads.
    :param loss: ``loss(x, β)``, a sync-free scalar loss (see :func:`surrogate_loss`).
    :param compile_options: passed to :func:`torch.compile`.
    """

    def __init__(self, model: nn.Module, loss: Loss, **compile_options: Any) -> None:
        self.objective = _Objective(model, loss)
        self.compile_options = {"dynamic": False, **compile_options}
        self._graphs: dict[tuple, Callable] = {}
        self._inputs: tuple[list[Tensor], list[Tensor]] = ([], [])
        self.compiles = 0

    def _key(self, x: Tensor) -> tuple:
        return (tuple(x.shape), x.dtype, x.device, x.is_contiguous(), self.objective.training)

    def _trace(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor, beta: Tensor) -> Callable:
        from torch.fx.experimental.proxy_tensor import make_fx

        names, buffer_names = list(params), list(buffers)

        def step(param_values: list[Tensor], buffer_values: list[Tensor], x: Tensor, beta: Tensor):
            state = {**dict(zip(names, param_values)), **dict(zip(buffer_names, buffer_values))}
            with pyro.validation_enabled(False):
                loss = torch.func.functional_call(self.objective, state, (x, beta))
            return loss.detach(), torch.autograd.grad(loss, param_values)

        graph = make_fx(step, tracing_mode="fake")(list(params.values()), list(buffers.values()), x, beta)
        graph.graph.eliminate_dead_code()
        graph.recompile()
        compiled = torch.compile(graph, **self.compile_options)
        # compile now, on copies of the buffers and with the random state put back afterwards,
        # so that compiling leaves no trace in the batch-norm statistics or the random stream
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), torch.no_grad():
            compiled(list(params.values()), [b.clone() for b in buffers.values()], x, beta)
        self.compiles += 1
        return compiled

    def prepare(self, x: Tensor, beta: Tensor) -> Callable:
        """The compiled graph for batches like ``x``: traced and compiled on first use (which
        raises if compiling fails, e.g. with no C++ compiler, leaving no trace)."""
        key = self._key(x)
        if key not in self._graphs:
            params = {k: p for k, p in self.objective.named_parameters() if p.requires_grad}
            buffers = dict(self.objective.named_buffers())
            self._inputs = list(params.values()), list(buffers.values())
            self._graphs[key] = self._trace(params, buffers, x, beta)
        return self._graphs[key]

    def __call__(self, x: Tensor, beta: Tensor) -> tuple[Tensor, Sequence[Tensor]]:
        graph = self.prepare(x, beta)
        with torch.no_grad():  # the graph holds its own backward pass: no autograd around it
            return graph(*self._inputs, x, beta)


class _DeviceConstants(TorchFunctionMode):
    """``torch.tensor(number, device="cuda")`` as a fill kernel (``torch.full``): the same
    constant, without the host-to-device copy that waits for the device and is refused during
    capture. torch.distributions makes such constants, e.g. for ``Normal(loc, 1.0)``."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.tensor and len(args) == 1 and isinstance(args[0], numbers.Number):
            device = kwargs.get("device")
            if device is not None and torch.device(device).type == "cuda":
                return torch.full(
                    (), args[0], dtype=kwargs.get("dtype"), device=device,
                    requires_grad=kwargs.get("requires_grad", False),
                )
        return func(*args, **kwargs)


class CUDAGraphStep:
    """The whole training step as one CUDA graph: Pyro's Python runs once, at capture.

    ``step(x, β)`` must run forward, backward and the optimiser step without reading any value
    back (see :func:`surrogate_loss`) and return the loss; its optimiser must be capturable;
    ``zero_grad()`` sets the gradients to ``None`` (called before every eager step and before
    the capture, so the captured backward pass writes fresh gradient tensors instead of adding
    to old ones). The first ``warmup`` calls run the step eagerly on a side stream (real
    training steps, which let cuBLAS/cuDNN and the optimiser state initialise outside the
    graph), the next one captures it and every call from then on copies the batch and β into
    the graph's static inputs and replays it. Random draws advance the CUDA generator as the
    eager step does.

    What forces a new capture (:attr:`captures` counts them): a batch of another shape, dtype
    or memory format, a switch between train and eval mode, and :meth:`reset` (called by the
    trainer when the optimiser's state is replaced, e.g. on loading a checkpoint). Parameters,
    buffers and the optimiser's state tensors must be updated in place (``copy_``,
    ``load_state_dict`` of the model), never rebound, since the graph holds their addresses.
    Memory: the graph keeps a private pool with one step's activations and gradients (about
    one eager step's peak) plus the static batch, for as long as the trainer lives.

    A step that cannot be captured (an operation that waits for the device) is announced with
    a warning and runs eagerly from then on (:attr:`failed` holds the reason).
    """

    def __init__(self, module: nn.Module, step: Loss, zero_grad: Callable[[], None], warmup: int = 3) -> None:
        self.module = module
        self.step = step
        self.zero_grad = zero_grad
        self.warmup = int(warmup)
        self.captures = 0
        self.failed: str | None = None
        self.reset()

    def reset(self) -> None:
        """Drop the captured graph; the next calls warm up and capture again."""
        self.graph: torch.cuda.CUDAGraph | None = None
        self._key: tuple | None = None
        self._eager_calls = 0
        self._static: tuple[Tensor, Tensor, Tensor] | None = None

    def _run_eager(self, x: Tensor, beta: Tensor) -> Tensor:
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        self.zero_grad()
        with torch.cuda.stream(side):
            loss = self.step(x, beta)
        torch.cuda.current_stream(x.device).wait_stream(side)
        self._eager_calls += 1
        return loss

    def _capture(self, x: Tensor, beta: Tensor) -> None:
        static_x, static_beta = x.clone(memory_format=torch.preserve_format), beta.clone()
        graph = torch.cuda.CUDAGraph()
        self.zero_grad()
        with torch.cuda.graph(graph), _DeviceConstants():
            static_loss = self.step(static_x, static_beta)
        self.graph, self._static = graph, (static_x, static_beta, static_loss)
        self.captures += 1

    def __call__(self, x: Tensor, beta: Tensor) -> Tensor:
        key = (tuple(x.shape), x.dtype, x.stride(), self.module.training)
        if key != self._key:
            self.reset()
            self._key = key
        if self.failed is not None:
            self.zero_grad()
            return self.step(x, beta)
        if self.graph is None:
            if self._eager_calls < self.warmup:
                return self._run_eager(x, beta)
            try:
                self._capture(x, beta)
            except RuntimeError as err:  # nothing ran: capture records, it does not execute
                self.failed = str(err).splitlines()[0]
                warnings.warn(
                    f"the training step could not be captured in a CUDA graph ({self.failed}); "
                    "it runs eagerly from now on",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.reset()
                self.zero_grad()
                return self.step(x, beta)
        static_x, static_beta, static_loss = self._static
        static_x.copy_(x)
        static_beta.copy_(beta)
        self.graph.replay()
        return static_loss.clone()
