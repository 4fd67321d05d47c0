"""Stochastic variational inference for a :class:`~pyro_vlae.models.LatentModel`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyro
import pyro.optim
import torch
from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..models.base import LatentModel
from .schedule import KLWarmup


def make_elbo(name: str, num_particles: int = 1) -> Trace_ELBO:
    """``"trace"``: Monte-Carlo ELBO (:class:`~pyro.infer.Trace_ELBO`); ``"meanfield"``:
    analytic KL terms (:class:`~pyro.infer.TraceMeanField_ELBO`), valid when the guide's
    latent sites are conditionally independent given the data plate's site structure."""
    if name == "trace":
        return Trace_ELBO(num_particles=num_particles)
    if name == "meanfield":
        return TraceMeanField_ELBO(num_particles=num_particles)
    raise ConfigError(f"unknown ELBO {name!r}", "use 'trace' or 'meanfield'")


class Trainer:
    """Mini-batch SVI with KL warm-up over data held as one tensor, or streamed from a
    :class:`~pyro_vlae.data.StreamData` (a torch Dataset) by its DataLoader.

    Each step draws a batch (a fixed permutation per epoch, seeded by ``seed`` and the epoch
    number, so a resumed run sees the same batches), evaluates β from ``warmup`` and calls
    ``SVI.step(x, num_data=N, beta=β)``. The returned loss is per data point.

    :param model: the Pyro model/guide pair.
    :param data: training data ``(N, ...)``, already on the model's device; or a
        :class:`~pyro_vlae.data.StreamData`, read batch by batch (same batches for the same seed).
    :param transform: applied to every batch on the device, e.g. ``torch.bernoulli``.
    :param clip_norm: clip each parameter's gradient norm to this value, in units of the
        per-data-point loss (the loss itself is scaled to the data-set size).
    """

    def __init__(
        self,
        model: LatentModel,
        data: Tensor | Dataset,
        *,
        batch_size: int = 100,
        lr: float = 2e-4,
        warmup: KLWarmup | None = None,
        elbo: str = "trace",
        num_particles: int = 1,
        clip_norm: float | None = None,
        seed: int = 0,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if batch_size > len(data):
            raise ConfigError(
                f"batch size {batch_size} exceeds the {len(data)} training points",
                f"use a batch size of at most {len(data)}",
            )
        model.check_elbo(elbo)
        self.model = model.train()
        self.data = data
        self.batch_size = int(batch_size)
        self.warmup = warmup or KLWarmup()
        self.seed = int(seed)
        self.num_data = len(data)
        self.transform = transform
        self.streamed = not torch.is_tensor(data)
        self._stream: Iterator[Tensor] | None = None
        self.batches_per_epoch = self.num_data // self.batch_size
        clip = {"clip_norm": clip_norm * self.num_data} if clip_norm else None
        self.optim = pyro.optim.Adam({"lr": lr}, clip_args=clip)
        self.svi = SVI(model.model, model.guide, self.optim, make_elbo(elbo, num_particles))
        self.step_count = 0
        self._epoch: int | None = None
        self._perm: Tensor | None = None

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
        indices = self.batch_indices(self.step_count if step is None else step)
        if self.streamed:
            x = torch.stack([self.data[i] for i in indices.tolist()]).to(self.model.device)
        else:
            x = self.data[indices]
        return self.transform(x) if self.transform is not None else x

    def _next_streamed(self) -> Tensor:
        """The next batch from the loader's worker processes (started at the current step)."""
        if self._stream is None:
            start = self.step_count
            indices = (self.batch_indices(s).tolist() for s in range(start, 2**62))
            self._stream = iter(self.data.loader(batch_sampler=indices, seed=self.seed + start))
        x = next(self._stream).to(self.model.device, non_blocking=True)
        return self.transform(x) if self.transform is not None else x

    # --------------------------------------------------------------------- step
    def step(self) -> float:
        """One SVI step; returns the β-weighted loss per data point."""
        x = self._next_streamed() if self.streamed else self.batch()
        beta = self.warmup(self.step_count)
        loss = self.svi.step(x, num_data=self.num_data, beta=beta)
        self.step_count += 1
        return loss / self.num_data

    @property
    def beta(self) -> float:
        return self.warmup(self.step_count)

    # -------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step_count,
            "model": self.model.state_dict(),
            "optim": self.optim.get_state(),
            "rng_cpu": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and self.model.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.model.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optim.set_state(state["optim"])
        self.step_count = int(state["step"])
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and self.model.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], self.model.device)
        self._stream = None


