"""Random draws on a random state of their own, for work that must leave training's alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block on torch's global random state seeded with ``seed``, then restore the
    state it had (CPU, and ``device``'s generator when it is a GPU).

    Pyro samples from torch's global random state, so evaluating a model at log time would
    otherwise draw from, and shift, the training run's random stream: a run would then
    depend on how often it logs. Draws inside the block repeat for the same ``seed``.
    """
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
