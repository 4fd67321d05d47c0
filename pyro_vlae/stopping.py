"""Stopping training between two steps: SIGINT (Ctrl-C), SIGTERM (``timeout``, ``kill``, a
cluster scheduler, ``docker stop``), SIGHUP (a closed terminal) and a closed output pipe
(``pyro-vlae fit ... | head -1``).

While :class:`StopRequests` is active such a signal is only noted: the training loop finishes
the step it is in, saves the checkpoint of that step and ends with :class:`Stopped`, whose
exit status is the shell's for the signal (128 + its number). A second signal stops at once
(:class:`KeyboardInterrupt`) and keeps the last checkpoint written, which is never half
written (:func:`~pyro_vlae.atomic.atomic_write`).

Data-parallel processes (``torchrun``) agree on the step to stop after (:func:`agreed`), so
every process stops at the same step, whichever of them received the signal.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from .errors import PyroVlaeError

if TYPE_CHECKING:
    import torch

#: the signals that stop training between two steps (SIGHUP where the platform has it)
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
#: the number of SIGPIPE, which a closed output pipe stands for (13 on every POSIX system)
SIGPIPE = getattr(signal, "SIGPIPE", 13)


def signal_name(signum: int) -> str:
    """``SIGINT`` for 2, and so on; a closed output pipe is "a closed output pipe"."""
    if signum == SIGPIPE:
        return "a closed output pipe"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Stopped(PyroVlaeError):
    """Training stopped between two steps on a signal, its checkpoint saved. ``exit_code`` is
    128 + the signal's number, as a shell reports a process the signal ended."""

    def __init__(self, signum: int, problem: str, fix: str | None = None) -> None:
        super().__init__(problem, fix)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequests:
    """Notes the stop signals (:data:`SIGNALS`) while active, as a context manager.

    ``signum`` is the first one received (``None``: none); a second raises
    :class:`KeyboardInterrupt` at once. Handlers can only be installed in the main thread;
    elsewhere the signals keep their usual effect.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        try:  # os.write, not print: the handler may run while the main thread writes to stderr
            os.write(2, f"\n{signal_name(signum)}: stopping after this step (again to stop at once)\n".encode())
        except OSError:  # stderr closed as well
            pass

    def guard(self, echo: Callable[..., None]) -> Callable[..., None]:
        """``echo`` (a function that writes, such as ``print`` or ``logger.log``) that turns a
        closed output pipe into a stop request (as SIGPIPE) and discards what is written after it."""

        def guarded(*args: Any) -> None:
            if self.signum == SIGPIPE:
                return
            try:
                echo(*args)
            except BrokenPipeError:
                discard_stdout()
                self.signum = self.signum or SIGPIPE

        return guarded


def discard_stdout() -> None:
    """Point standard output at the null device, so that nothing else fails on the closed pipe
    (Python flushes it once more at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor behind sys.stdout
        pass
    finally:
        os.close(devnull)


def agreed(signum: int | None, device: torch.device) -> int | None:
    """Under data-parallel training: the largest signal number any process noted (``None``:
    none), the same in every process, so that all stop after the same step. One small
    all-reduce per step."""
    import torch
    import torch.distributed as dist

    flag = torch.tensor([signum or 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None
