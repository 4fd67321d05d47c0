"""Data-parallel training on ``torch.distributed``: DistributedDataParallel over the Pyro ELBO.

Every process holds a full copy of the model and draws the same *global* batch of
``batch_size`` indices (the permutation depends only on the seed and the epoch); process r
trains on the r-th contiguous shard of ``batch_size / world_size`` points. The ``data`` plate
scales each shard's log-densities by ``num_data / local_batch``, and DistributedDataParallel
averages the gradients over the processes, so the averaged gradient is exactly that of the
global batch's ELBO estimate ``num_data / batch_size · Σ_batch``. The trainer's
``torch.optim.Adam`` then takes the same step in every process, and the parameters stay equal.

The networks, as the trainer's :class:`~pyro_vlae.train.trainer.ScaledPair` (model and guide
on the scaled mini-batch), are wrapped through Pyro's own :class:`~pyro.infer.elbo.ELBOModule`
(``elbo(model, guide)``), a ``torch.nn.Module`` whose forward pass is the differentiable ELBO
loss; :func:`data_parallel_elbo` puts DistributedDataParallel around it. The trainer's ELBO
(also the JIT-compiled one) is used unchanged; :func:`data_parallel_svi` hands the same
module to :class:`~pyro.infer.SVI` for scripts that keep a ``pyro.optim`` optimizer.

Batch norm uses each process's own shard statistics, as usual for DistributedDataParallel;
its running statistics are those of process 0 (broadcast before every forward pass). The
sampling noise of process r at step t is seeded by ``(seed, t, r)``, so a run resumed on the
same number of processes repeats the uninterrupted one.

The processes are described by the environment variables ``torchrun`` sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from pyro.infer import SVI
from pyro.infer.elbo import ELBO
from pyro.optim import PyroOptim
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from ..devices import resolve_device
from ..errors import ConfigError, DistributedError, PyroVlaeError
from ..models.base import LatentModel
from .trainer import Trainer

T = TypeVar("T")

#: seconds a process waits for the others (rendezvous, each collective) by default
DEFAULT_TIMEOUT = 600.0
RENDEZVOUS = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as set by ``torchrun`` (1 when not launched by it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number", "launch with torchrun --nproc-per-node N"
        ) from None


def lost_contact(err: BaseException) -> bool:
    """Whether ``err`` comes from the communication between the processes (gloo, NCCL)."""
    text = str(err).lower()
    return isinstance(err, dist.DistError) or any(w in text for w in ("gloo", "nccl", "connection", "timed out"))


def first_sentence(err: BaseException) -> str:
    """``Type: first sentence`` of an error from torch.distributed, without gloo's source location."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(err).strip())
    return f"{type(err).__name__}: {text.splitlines()[0].split('. ')[0] if text else 'no message'}"


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of process ``rank``'s sampling noise at ``step`` (independent streams)."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


def local_batch_size(batch_size: int, world_size: int) -> int:
    """The shard of a global batch that one process trains on."""
    if batch_size % world_size:
        multiple = max(world_size, batch_size // world_size * world_size)
        raise ConfigError(
            f"--batch-size {batch_size} does not split evenly over {world_size} processes",
            f"use a multiple of {world_size}, e.g. --batch-size {multiple}",
        )
    if batch_size // world_size < 2:
        raise ConfigError(
            f"--batch-size {batch_size} leaves fewer than 2 points per process (batch norm needs two)",
            f"use --batch-size {2 * world_size} or more",
        )
    return batch_size // world_size


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among the data-parallel processes."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = True  # False when the caller had initialised torch.distributed already

    @property
    def is_main(self) -> bool:
        """Process 0 writes the run folder: checkpoints, metrics, pictures."""
        return self.rank == 0

    @contextmanager
    def collective(self, what: str) -> Iterator[None]:
        """Turn a failed collective (a process died, or stopped answering) into one message."""
        try:
            yield
        except RuntimeError as err:  # gloo reports a lost peer as a plain RuntimeError
            if not lost_contact(err):
                raise
            raise DistributedError(
                f"process {self.rank} of {self.world_size} lost contact with the others during {what} "
                f"({first_sentence(err)})",
                "another process failed or was stopped (see its messages); restart all processes, "
                "with --resume to continue from the last checkpoint",
            ) from err

    def check_same(self, values: dict[str, Any]) -> None:
        """Raise the same :class:`ConfigError` in every process unless all hold equal ``values``."""
        gathered: list[Any] = [None] * self.world_size
        with self.collective("the start-up check of the options"):
            dist.all_gather_object(gathered, values)
        differ = []
        for rank, other in enumerate(gathered[1:], start=1):
            for key in sorted(set(values) | set(other)):
                if other.get(key) != gathered[0].get(key):
                    differ.append(f"{key} (process 0: {gathered[0].get(key)!r}, process {rank}: {other.get(key)!r})")
        if differ:
            raise ConfigError(
                "the processes were started with different options: " + "; ".join(differ[:4]),
                "start every process with the same `pyro-vlae fit` options",
            )

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in process 0 and hand its result, or its error, to every process."""
        box: list[Any] = [None]
        failure: BaseException | None = None
        if self.is_main:
            try:
                box = [("ok", fn())]
            except PyroVlaeError as err:
                box = [("error", err)]
            except Exception as err:
                failure = err
                box = [("error", DistributedError(f"process 0 failed: {type(err).__name__}: {err}"))]
        with self.collective("the start-up of the run"):
            dist.broadcast_object_list(box, src=0)
        if failure is not None:
            raise failure
        status, value = box[0]
        if status == "error":
            raise value
        return value


def setup(device: str = "auto", timeout: float = DEFAULT_TIMEOUT) -> DistributedContext | None:
    """Join the process group that ``torchrun`` describes in the environment.

    Returns ``None`` for a single process. Uses NCCL with one GPU per process, gloo on CPUs;
    an already initialised process group (e.g. from the user's own script) is reused.
    Raises :class:`ConfigError` for a missing rendezvous or too few GPUs, and
    :class:`DistributedError` when the processes do not all arrive within ``timeout`` seconds.
    """
    world_size = world_size_from_env()
    if world_size <= 1:
        return None
    missing = [name for name in RENDEZVOUS if name not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world_size} asks for data-parallel training, but the rendezvous "
            f"variables {', '.join(missing)} are not set",
            "launch with torchrun (e.g. torchrun --nproc-per-node 2 $(which pyro-vlae) fit ...), "
            "which sets them",
        )
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    torch_device = resolve_device(device, local_rank, local_world_size)
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    owns_group = not dist.is_initialized()
    if owns_group:
        where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        try:
            dist.init_process_group(
                "nccl" if torch_device.type == "cuda" else "gloo",
                timeout=timedelta(seconds=timeout),
                device_id=torch_device if torch_device.type == "cuda" else None,
            )
        except (dist.DistError, RuntimeError, ValueError) as err:
            raise DistributedError(
                f"process {rank} of {world_size} could not meet the others at {where} within {timeout:g}s "
                f"({first_sentence(err)})",
                "start all processes with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE (torchrun does), "
                "or raise --dist-timeout",
            ) from err
    if dist.get_world_size() != world_size or dist.get_rank() != rank:
        raise ConfigError(
            f"the process group has {dist.get_world_size()} processes, but WORLD_SIZE is {world_size}",
            "initialise the process group from torchrun's environment (init_method='env://')",
        )
    return DistributedContext(rank, world_size, local_rank, torch_device, owns_group)


def teardown(context: DistributedContext | None) -> None:
    """Leave the process group joined by :func:`setup` (one it did not start is left alone)."""
    if context is not None and context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def data_parallel_elbo(
    model: torch.nn.Module, guide: Callable[..., Any], elbo: ELBO, **ddp_options: Any
) -> DistributedDataParallel:
    """Pyro's :class:`~pyro.infer.elbo.ELBOModule` ``elbo(model, guide)`` inside DistributedDataParallel.

    The ELBO module holds the parameters of ``model`` (and of ``guide`` when it is a module)
    and its forward pass is the differentiable ELBO loss; through DDP, every backward pass
    all-reduces (averages) the gradients over the processes. Call it after
    ``torch.distributed.init_process_group``; ``ddp_options`` go to DistributedDataParallel
    (e.g. ``device_ids=[local_rank]`` on GPUs).
    """
    return DistributedDataParallel(elbo(model, guide), **ddp_options)


def data_parallel_svi(
    model: torch.nn.Module,
    guide: Callable[..., Any],
    optim: PyroOptim,
    loss: ELBO,
    **ddp_options: Any,
) -> SVI:
    """:class:`~pyro.infer.SVI` whose gradients are averaged over the processes.

    ``SVI.step`` runs the forward pass of :func:`data_parallel_elbo` and its backward pass
    (which all-reduces the gradients) before ``optim`` (any :mod:`pyro.optim` optimizer)
    updates the parameters.
    """
    ddp = data_parallel_elbo(model, guide, loss, **ddp_options)

    def differentiable_loss(_model, _guide, *args, **kwargs) -> Tensor:
        return ddp.module(*args, **kwargs)

    def loss_and_grads(_model, _guide, *args, **kwargs) -> Tensor:
        value = ddp(*args, **kwargs)
        value.backward()
        return value

    svi = SVI(model, guide, optim, differentiable_loss, loss_and_grads=loss_and_grads)
    svi.ddp = ddp
    return svi


class DistributedTrainer(Trainer):
    """:class:`Trainer` on one shard of every global batch, with gradients averaged over the
    processes of ``context``; ``batch_size`` is the global batch. The same ``torch.optim.Adam``
    step follows the all-reduce in every process. In-memory data is sharded by index; streamed
    data reads only this process's shard (the loader's batch sampler is :meth:`batch_indices`,
    like a ``DistributedSampler`` over the global batches). :meth:`train_step` returns the loss
    per data point averaged over all processes (the same value in each). Its step is the eager
    one (a CUDA graph would have to capture the all-reduce as well)."""

    supports_compile = False

    def __init__(
        self,
        model: LatentModel,
        data: Tensor | Dataset,
        *,
        context: DistributedContext,
        batch_size: int = 100,
        **kwargs: Any,
    ) -> None:
        self.local_batch_size = local_batch_size(batch_size, context.world_size)
        self.context = context
        super().__init__(model, data, batch_size=batch_size, **kwargs)
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        with context.collective("the start-up of DistributedDataParallel"):
            self.ddp = data_parallel_elbo(self.pair, self._guide_fn, self.elbo, device_ids=device_ids)

    def batch_indices(self, step: int) -> Tensor:
        """This process's contiguous shard of the global batch of ``step``."""
        start = self.context.rank * self.local_batch_size
        return super().batch_indices(step)[start : start + self.local_batch_size]

    def differentiable_loss(self, x: Tensor, beta: Tensor) -> Tensor:
        """The shard's ELBO loss through DDP, whose backward pass averages the gradients."""
        return self.ddp(x, beta)

    def train_step(self) -> Tensor:
        torch.manual_seed(step_seed(self.seed, self.step_count, self.context.rank))
        with self.context.collective(f"training step {self.step_count + 1}"):
            loss = super().train_step()
            dist.all_reduce(loss)
        return loss / self.context.world_size
