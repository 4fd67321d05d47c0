"""Writing the files of a command atomically, and a full or read-only disk as one message.

Every file a command writes goes through :func:`atomic_write`: into a temporary file beside
it, flushed to disk, then renamed over the old one. A crash, a kill or a full disk leaves
either the old file or the new one, never a half-written one, and no temporary file behind
when the process lives to clean up (a later :func:`remove_leftovers` removes those of a
killed one). A disk error (:data:`DISK_ERRORS`) becomes one :class:`StorageError` naming the
path and the fix.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import PyroVlaeError, StorageError

#: errors of the disk rather than of the program: full, over quota, read-only, not permitted
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}
#: what the temporary file of ``NAME`` is called: ``.NAME-<random>.tmp``
TEMPORARY = ".{name}-*.tmp"


def storage_error(path: str | Path, err: OSError) -> StorageError:
    """A disk error while writing ``path``, as one message with its fix."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = f"free space on the disk of {folder} (see `df -h {folder}`), then run the command again"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"make {folder} writable, or copy the run folder to a writable place and use that copy"
    else:
        fix = "check the disk, then run the command again"
    return StorageError(
        f"cannot write {path}: {err.strerror or err}; the files written before are kept as they were", fix
    )


def _file_mode() -> int:
    """The mode a new file gets from the user's umask (``mkstemp`` makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", **open_args: Any) -> Iterator[IO[Any]]:
    """A file object whose content replaces ``path`` in one rename when the block ends, and
    is thrown away if the block fails. ``mode`` is ``"wb"`` or ``"w"`` (``open_args`` as
    for :func:`open`, e.g. ``newline=""``)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise (storage_error(path, err) if err.errno in DISK_ERRORS else err) from err
    try:
        with os.fdopen(fd, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, PyroVlaeError) and err.errno in DISK_ERRORS:
            raise storage_error(path, err) from err
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Remove the temporary files (:data:`TEMPORARY`) that a killed process left in
    ``folder``; call it only while holding the folder's lock (:mod:`pyro_vlae.folder_lock`)."""
    removed = []
    for tmp in Path(folder).glob(TEMPORARY.format(name="*")):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def make_folder(folder: str | Path) -> Path:
    """Create ``folder`` and its parents if missing; a disk error is a :class:`StorageError`."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise (storage_error(folder, err) if err.errno in DISK_ERRORS else err) from err
    return Path(folder)


def check_writable(folder: str | Path) -> None:
    """Raise :class:`StorageError` unless a file can be created in ``folder``: before a
    long computation whose results would go there."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-test-", suffix=".tmp", dir=folder)
    except OSError as err:
        raise (storage_error(folder, err) if err.errno in DISK_ERRORS else err) from err
    os.close(fd)
    os.unlink(tmp)
