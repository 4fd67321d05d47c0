"""The batches of a training run, from data in memory or streamed from disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset


class BatchSource:
    """The batch of every training step: the items ``indices(step)`` (a permutation per
    epoch, fixed by the seed, so a resumed run sees the same batches), transformed, on
    ``device``.

    Data held as one tensor is indexed where it lies. A
    :class:`~pyro_vlae.data.StreamData` (a torch Dataset) is read ahead, step after step, by
    its loader's worker processes (:meth:`next`), or item by item for a batch out of turn
    (``source[step]``).

    :param transform: applied to every batch on the device, e.g. ``torch.bernoulli``.
    """

    def __init__(
        self,
        data: Tensor | Dataset,
        indices: Callable[[int], Tensor],
        device: torch.device,
        transform: Callable[[Tensor], Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        self.data = data
        self.indices = indices
        self.device = device
        self.transform = transform
        self.seed = int(seed)
        self.streamed = not torch.is_tensor(data)
        self._stream: Iterator[Tensor] | None = None

    def _finish(self, x: Tensor) -> Tensor:
        return self.transform(x) if self.transform is not None else x

    def __getitem__(self, step: int) -> Tensor:
        """The batch of ``step``, read at once."""
        indices = self.indices(step)
        if self.streamed:
            return self._finish(torch.stack([self.data[i] for i in indices.tolist()]).to(self.device))
        return self._finish(self.data[indices])

    def next(self, step: int) -> Tensor:
        """The batch of ``step``, the step after the previous call's (streamed data: from the
        loader's workers, started at the first such step or after :meth:`reset`)."""
        if not self.streamed:
            return self[step]
        if self._stream is None:
            indices = (self.indices(s).tolist() for s in range(step, 2**62))
            self._stream = iter(self.data.loader(batch_sampler=indices, seed=self.seed + step))
        return self._finish(next(self._stream).to(self.device, non_blocking=True))

    def reset(self) -> None:
        """Stop reading ahead (the training state was replaced); the next :meth:`next` starts anew."""
        self._stream = None
