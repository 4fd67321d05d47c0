"""The devices a run can name (``--device``) and the torch device each one means."""

from __future__ import annotations

import re

import torch

from .errors import ConfigError

#: the values of ``--device``
DEVICES = ("auto", "cpu", "cuda")


def is_device(name: str) -> bool:
    """Whether ``name`` is a ``--device``: one of :data:`DEVICES`, or ``cuda:N`` (GPU N)."""
    return name in DEVICES or bool(re.fullmatch(r"cuda:\d+", str(name)))


def resolve_device(name: str, local_rank: int | None = None, local_world_size: int = 1) -> torch.device:
    """The device for ``--device name``: ``auto`` is CUDA when PyTorch sees a GPU, else the CPU;
    ``cuda:N`` is GPU N.

    In a data-parallel run (``local_rank`` given) every process gets a GPU of its own,
    ``cuda:LOCAL_RANK``, so the ``local_world_size`` processes on this machine need that many.
    Raises :class:`ConfigError` when CUDA is asked for and missing or too few.
    """
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "cpu" or (name == "auto" and gpus == 0):
        return torch.device("cpu")
    if local_rank is None:
        if name == "auto":
            return torch.device("cuda")
        if name != "auto" and gpus == 0:
            raise ConfigError(
                f"--device {name} was requested but PyTorch sees no CUDA device",
                "install a CUDA build of torch (see the README) or use --device cpu",
            )
        device = torch.device(name)
        if device.index is not None and device.index >= gpus:
            raise ConfigError(
                f"--device {name} was requested but PyTorch sees {gpus} CUDA device(s), cuda:0 to cuda:{gpus - 1}",
                "pick one of them, or --device cuda for the first",
            )
        return device
    if gpus < local_world_size:
        raise ConfigError(
            f"--device {name}: {local_world_size} processes on this machine need one GPU each, "
            f"but PyTorch sees {gpus}",
            f"start at most {gpus} processes per machine (torchrun --nproc-per-node {gpus})"
            if gpus else "use --device cpu (gloo), or install a CUDA build of torch",
        )
    return torch.device("cuda", local_rank)
