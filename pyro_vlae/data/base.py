"""The data-set plugin interface: what a data set tells the library about itself."""

from __future__ import annotations

import atexit
import os
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from ..errors import DataError

#: seconds a loader waits for a batch from its worker processes before giving up
LOADER_TIMEOUT = 300


class Data(ABC):
    """One split of a data set as training, evaluation and the pictures read it: held in
    memory (:class:`TensorData`) or streamed from disk (:class:`StreamData`). Callers use
    this interface alone, so another container (a subclass implementing the abstract
    methods) works everywhere the built-in ones do."""

    #: applied to every training batch on the device (e.g. dynamic binarization), or ``None``
    transform: Callable[[Tensor], Tensor] | None = None
    #: ground-truth factors of variation ``(N, F)`` for the hierarchy metrics, or ``None``
    factors: Tensor | None = None
    #: one name per column of :attr:`factors`
    factor_names: tuple[str, ...] = ()

    @abstractmethod
    def __len__(self) -> int:
        """Number of data points."""

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """Shape of one data point."""

    @abstractmethod
    def head(self, n: int | None = None) -> Tensor:
        """The first ``n`` data points (all by default) as one tensor."""

    @abstractmethod
    def batches(self, batch_size: int) -> Iterator[Tensor]:
        """The data in order, ``batch_size`` points at a time."""

    @abstractmethod
    def points_to_check(self, batch_size: int) -> Tensor:
        """The points :meth:`LatentModel.check_data` validates before training."""

    @abstractmethod
    def for_training(self, device: torch.device) -> Tensor | Dataset:
        """What :class:`~pyro_vlae.train.Trainer` draws its batches from."""

    def subset(self, indices: Tensor | None = None) -> Data:
        """The points ``indices`` (every point by default) as stored, without the training
        :attr:`transform`, with their factors: what evaluation scores.

        This default reads every point (:meth:`head`) into a :class:`TensorData`; a container
        whose :meth:`head` applies the transform, or that should stay on disk, overrides it.
        """
        x = self.head()
        factors = self.factors
        if indices is not None:
            x = x[indices]
            factors = None if factors is None else factors[indices]
        return TensorData(x, factors, tuple(self.factor_names))


@dataclass
class TensorData(Data):
    """A data set held as one tensor in memory.

    :param x: data points, ``(N, D)`` or ``(N, C, H, W)``, floating point.
    :param factors: optional ground-truth factors of variation, ``(N, F)``.
    :param factor_names: one name per column of ``factors``.
    :param transform: applied to every training mini-batch where it lies (e.g. on the GPU),
        such as dynamic binarization ``torch.bernoulli``; ``None`` uses ``x`` as it is.
    """

    x: Tensor
    factors: Tensor | None = None
    factor_names: tuple[str, ...] = field(default_factory=tuple)
    transform: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        if not torch.is_tensor(self.x) or not self.x.is_floating_point():
            raise DataError(
                f"data must be a floating-point tensor, got {type(self.x).__name__}"
                + (f" of {self.x.dtype}" if torch.is_tensor(self.x) else ""),
                "convert it with torch.as_tensor(array, dtype=torch.float32)",
            )
        if self.x.dim() not in (2, 4):
            raise DataError(
                f"data must have shape (N, D) or (N, C, H, W), got {tuple(self.x.shape)}",
                "add a channel dimension to grey images: x.unsqueeze(1)",
            )
        if self.factors is not None:
            if self.factors.shape[0] != self.x.shape[0]:
                raise DataError(
                    f"{self.factors.shape[0]} factor rows for {self.x.shape[0]} data points",
                    "give one row of factors per data point",
                )
            if len(self.factor_names) != self.factors.shape[1]:
                raise DataError("factor_names must name every column of factors")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one data point."""
        return tuple(self.x.shape[1:])

    def head(self, n: int | None = None) -> Tensor:
        """The first ``n`` data points (all by default), as the model sees them."""
        x = self.x[:n]
        return self.transform(x) if self.transform is not None else x

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        """The data in order, ``batch_size`` points at a time."""
        for start in range(0, len(self), batch_size):
            x = self.x[start : start + batch_size]
            yield self.transform(x) if self.transform is not None else x

    def points_to_check(self, batch_size: int) -> Tensor:
        """Every point: in memory, the whole data set is checked."""
        return self.head()

    def for_training(self, device: torch.device) -> Tensor:
        """The whole tensor, moved to ``device`` once."""
        return self.x.to(device)

    def subset(self, indices: Tensor | None = None) -> TensorData:
        """The points ``indices`` (all by default; no copy then) and their factors, without
        the transform."""
        if indices is None:
            return TensorData(self.x, self.factors, self.factor_names)
        factors = None if self.factors is None else self.factors[indices]
        return TensorData(self.x[indices], factors, self.factor_names)


class StreamData(Dataset, Data):
    """A data set read from disk batch by batch, for data that does not fit in memory.

    Wraps a map-style :class:`~torch.utils.data.Dataset` whose items are images or
    ``(image, target)`` pairs (torchvision's convention); items are floating-point tensors of
    shape ``shape``. Training reads it with a :class:`~torch.utils.data.DataLoader` in
    ``num_workers`` worker processes, into pinned memory when training on a GPU.

    :param dataset: the items.
    :param shape: shape of one data point.
    :param num_workers: loader worker processes (default: up to 8, one per CPU core).
    """

    def __init__(self, dataset: Dataset, shape: tuple[int, ...], num_workers: int | None = None) -> None:
        self.dataset = dataset
        self._shape = tuple(int(s) for s in shape)
        self.num_workers = min(8, os.cpu_count() or 1) if num_workers is None else int(num_workers)
        if self.num_workers < 0:
            raise DataError(f"num_workers must be >= 0, got {num_workers}", "pass e.g. -P num_workers=4")

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Tensor:
        item = self.dataset[index]
        return item[0] if isinstance(item, tuple | list) else item

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def loader(
        self, batch_sampler: Iterable[list[int]] | None = None, batch_size: int = 1, seed: int = 0
    ) -> DataLoader:
        """A loader over batches of indices from ``batch_sampler`` (else in order).

        Its own generator (from ``seed``) seeds the workers, so reading data leaves the global
        random state, and with it the training run, unchanged. An item that cannot be read
        (:class:`DataError`, e.g. a truncated image) does not crash its worker process: the
        error reaches the main process as the same :class:`DataError`, naming the file. A
        worker that dies (e.g. killed for lack of memory) or sends nothing for
        :data:`LOADER_TIMEOUT` seconds (e.g. stopped) is a :class:`DataError` too. The workers
        ignore the stop signals, which the main process handles (:mod:`pyro_vlae.stopping`).
        """
        options: dict[str, Any] = {
            "num_workers": self.num_workers,
            "pin_memory": torch.cuda.is_available(),
            "generator": torch.Generator().manual_seed(seed),
        }
        if self.num_workers > 0:
            options.update(timeout=LOADER_TIMEOUT, worker_init_fn=_ignore_stop_signals)
        if batch_sampler is not None:
            return _CheckedLoader(_Reported(self), batch_sampler=batch_sampler, **options)
        return _CheckedLoader(_Reported(self), batch_size=batch_size, shuffle=False, **options)

    def head(self, n: int | None = None) -> Tensor:
        """The first ``n`` data points (all by default) stacked into one tensor."""
        n = len(self) if n is None else min(n, len(self))
        return torch.stack([self[i] for i in range(n)])

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        """The data in order, ``batch_size`` points at a time, read by the worker processes."""
        yield from self.loader(batch_size=batch_size)

    def points_to_check(self, batch_size: int) -> Tensor:
        """The first four batches: a stream is too large to read twice."""
        return self.head(4 * batch_size)

    def for_training(self, device: torch.device) -> StreamData:
        """The stream itself: the trainer reads it batch by batch through :meth:`loader`."""
        return self

    def subset(self, indices: Tensor | None = None) -> StreamData:
        """The points ``indices`` (all by default), still read from disk (:meth:`head` and
        :meth:`batches` of a stream never apply the transform)."""
        if indices is None:
            return self
        return StreamData(Subset(self, indices.tolist()), self.shape, self.num_workers)


class _Reported(Dataset):
    """Items of a :class:`StreamData` as ``(x, problem, fix)``: a :class:`DataError` raised
    in a loader worker is returned as text (with a zero ``x``) instead of killing the worker."""

    def __init__(self, data: StreamData) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Tensor, str, str]:
        try:
            return self.data[index], "", ""
        except DataError as err:
            return torch.zeros(self.data.shape), err.problem, err.fix or ""


def _ignore_stop_signals(worker_id: int) -> None:
    """In a loader worker: leave SIGINT, SIGTERM and SIGHUP to the main process, which ends
    the workers once it has finished its step."""
    from ..stopping import SIGNALS

    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


class _CheckedLoader(DataLoader):
    """A DataLoader over :class:`_Reported` items that yields the batches of ``x`` and raises
    the first item's :class:`DataError` in the main process, and a worker that died or hangs
    as a :class:`DataError`."""

    def __iter__(self) -> Iterator[Tensor]:
        batches = None
        try:
            while True:
                try:
                    if batches is None:  # started inside the try: a worker may die at once
                        batches = super().__iter__()
                        _WORKERS.extend(getattr(batches, "_workers", ()))
                    x, problems, fixes = next(batches)
                except StopIteration:
                    return
                except RuntimeError as err:  # a worker killed (e.g. out of memory), or silent past the timeout
                    if "DataLoader" not in str(err):
                        raise
                    raise worker_failed(err) from err
                for problem, fix in zip(problems, fixes):
                    if problem:
                        raise DataError(problem, fix or None)
                yield x
        finally:  # done, failed or closed: end the workers now, not whenever the iterator is collected
            # (after a dead worker, PyTorch's SIGCHLD handler would raise anywhere until then)
            if batches is not None:
                _end_workers(batches)


#: the worker processes of every loader iterator started here (those that ended are dropped)
_WORKERS: list = []


def _end_workers(batches: Iterator) -> None:
    """End the workers of a loader iterator: PyTorch's own shutdown (each worker is sent a
    final message and exits), then SIGKILL for any still alive. One can be: a worker ignores
    SIGTERM (:func:`_ignore_stop_signals`), PyTorch's fallback, and when the iterator is
    collected in a reference cycle, the queue that carries the final message may already be
    closed. Killing is safe here: PyTorch's shutdown has stopped watching the workers and
    nothing reads their output any more."""
    getattr(batches, "_shutdown_workers", lambda: None)()
    if not getattr(batches, "_worker_pids_set", False):  # else PyTorch still watches them (at exit)
        _kill(getattr(batches, "_workers", ()))
    _WORKERS[:] = [w for w in _WORKERS if w.is_alive()]


def _kill(workers: Iterable) -> None:
    for worker in workers:
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=5)


@atexit.register
def _kill_workers_at_exit() -> None:
    """At interpreter exit, kill the loader workers still alive (an iterator nobody closed, e.g.
    held by a trainer under torchrun): multiprocessing's own exit handler, which runs after this
    one, terminates them with SIGTERM, which they ignore, and would then wait for them forever.
    PyTorch's SIGCHLD handler, which would take their end for a crash, is removed first."""
    if any(worker.is_alive() for worker in _WORKERS):
        if hasattr(signal, "SIGCHLD") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _kill(_WORKERS)


def worker_failed(err: RuntimeError) -> DataError:
    """PyTorch's error for a loader worker that died or sent nothing in time, as a :class:`DataError`."""
    return DataError(
        f"a data-loading worker process failed ({str(err).splitlines()[0]})",
        "free memory, or use fewer worker processes (e.g. -P num_workers=2)",
    )


class DatasetPlugin(ABC):
    """A data set, registered under the ``pyro_vlae.datasets`` entry-point group.

    Subclasses set the class attributes and implement :meth:`load`. ``recommended``
    holds the model settings that suit the data (``z_dims``, ``width``, ``batch_size``,
    ``lr``, ``steps``, ``likelihood_options`` ...); ``recipes`` overrides them for a model
    trained as its own authors train it (``{"lvae": {...}}``); the command line fills unset
    options from :meth:`recommended_for`. A recipe may state its budget as ``epochs`` and its
    KL warm-up as ``warmup_epochs`` (:meth:`~pyro_vlae.config.RunConfig.resolve`).
    ``factor_levels`` gives the abstraction level of each ground-truth factor (1 = lowest),
    for the hierarchy metrics; ``circular_factors`` names the periodic ones (values in
    [0, 1), e.g. a hue).

    :param data_dir: folder holding the data files (``None``: the plugin's default).
    :param download: fetch missing files from the network when the plugin can
        (without a network, the error names the files to place in ``data_dir``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    shape: ClassVar[tuple[int, ...]] = ()
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    default_likelihood: ClassVar[str] = "gaussian"
    recommended: ClassVar[dict[str, Any]] = {}
    recipes: ClassVar[dict[str, dict[str, Any]]] = {}
    factor_levels: ClassVar[dict[str, int]] = {}
    circular_factors: ClassVar[tuple[str, ...]] = ()
    splits: ClassVar[tuple[str, ...]] = ("train", "test")

    def __init__(self, data_dir: str | Path | None = None, download: bool = True) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else None
        self.download = download

    def recommended_for(self, model: str) -> dict[str, Any]:
        """The settings for ``model`` on this data: its recipe, over :attr:`recommended`."""
        return {**self.recommended, **self.recipes.get(model, {})}

    @abstractmethod
    def load(self, split: str = "train") -> Data:
        """The ``split`` part of the data set: in memory, or streamed from disk."""

    def record_sources(self, *paths: str | Path) -> None:
        """Note files or folders that :meth:`load` reads, for :meth:`sources`."""
        self.__dict__.setdefault("_sources", set()).update(str(Path(p).expanduser().resolve()) for p in paths)

    def sources(self) -> list[str]:
        """The files and folders the loaded data came from, as absolute paths (``summary.json``
        lists them), noted by :meth:`record_sources`; empty for generated data. A plugin that
        records nothing but has a ``data_dir`` reports that folder."""
        recorded = sorted(self.__dict__.get("_sources", ()))
        if not recorded and self.data_dir is not None:
            return [str(self.data_dir.resolve())]
        return recorded

    def provenance(self) -> dict[str, Any]:
        """How the data was read beyond :meth:`sources`, for ``summary.json`` (e.g. how a random
        split was drawn, which files were left out); empty for most data sets."""
        return {}

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(
                f"data set {self.name!r} has no split {split!r}",
                f"choose one of: {', '.join(self.splits)}",
            )
