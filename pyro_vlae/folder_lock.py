"""One writer per run folder: an exclusive lock held while a command writes into the folder.

The lock is ``flock(2)`` on the folder's lock file (:data:`~pyro_vlae.run_folder.LOCK`): the
operating system releases it when its process ends, however it ends, so a crashed or killed
process never leaves a folder locked. The file itself stays (it is empty but for who holds
the lock) and marks the folder as one pyro-vlae wrote.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from .atomic import DISK_ERRORS, storage_error
from .errors import CheckpointError

#: the descriptors of the locks this process holds
_HELD: set[int] = set()


def _close_inherited() -> None:
    """In a forked child (a data loader's worker, say): close the parent's lock descriptors,
    which would otherwise keep the lock held after the parent released it, until the child ends."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_inherited)


class FolderLock:
    """The exclusive lock on ``folder`` (its file ``name``), as a context manager.

    :meth:`acquire` raises :class:`CheckpointError` at once, naming the process that holds
    it, when another process does.
    """

    def __init__(self, folder: str | Path, command: str, name: str) -> None:
        self.path = Path(folder) / name
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        if not self.path.parent.is_dir():
            raise CheckpointError(
                f"no run folder at {self.path.parent}", "pass a run folder written by `pyro-vlae fit`"
            )
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise (storage_error(self.path, err) if err.errno in DISK_ERRORS else err) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise CheckpointError(
                f"{self.path.parent} is in use by another pyro-vlae process ({holder}); "
                f"`{self.command}` left it untouched",
                "wait for that process to end, or use another folder; a process that crashed "
                "or was killed holds no lock",
            ) from None
        except OSError as err:
            os.close(fd)
            raise CheckpointError(
                f"cannot lock {self.path} ({err.strerror or err})",
                "use a run folder on a local file system",
            ) from err
        held = f"`{self.command}`, process {os.getpid()} on {socket.gethostname()}, since " + time.strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, held.encode() + b"\n", 0)
        self._fd = fd
        _HELD.add(fd)
        return self

    def release(self) -> None:
        """Release the lock (idempotent); the file stays."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _HELD.discard(fd)
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the lock

    def __enter__(self) -> FolderLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
