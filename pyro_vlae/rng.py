"""Random draws on a random state of their own, for work that must leave training's alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
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


def derived_seed(*keys: int) -> int:
    """A seed for one task of a run (e.g. the log of step ``step`` of the run seeded ``seed``:
    ``derived_seed(seed, step)``), from :class:`numpy.random.SeedSequence`, so that nearby
    keys give unrelated random streams."""
    return int(np.random.SeedSequence([k % 2**64 for k in keys]).generate_state(1, np.uint64)[0])
