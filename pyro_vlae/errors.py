"""Errors a user can cause, each with the problem and the fix.

Every exception here derives from :class:`PyroVlaeError`; the command line prints its
message (no traceback) and exits non-zero. Library users can catch the base class.
"""

from __future__ import annotations


class PyroVlaeError(Exception):
    """Base class: ``str(err)`` names the problem and how to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  fix: {fix}")


class DataError(PyroVlaeError, ValueError):
    """Data with the wrong shape, range or values for the model or likelihood."""


class ConfigError(PyroVlaeError, ValueError):
    """An invalid option: unknown name, bad number, inconsistent settings."""


class PluginError(PyroVlaeError, LookupError):
    """An unknown plugin, or one that failed to load or returned the wrong type."""


class CheckpointError(PyroVlaeError, OSError):
    """A missing, unreadable, corrupt or incompatible checkpoint or run folder."""


class StorageError(PyroVlaeError, OSError):
    """A file could not be written: a full, read-only or failing disk. Nothing written
    before is lost (:mod:`pyro_vlae.atomic`)."""


class TrainingDiverged(PyroVlaeError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class DistributedError(PyroVlaeError, RuntimeError):
    """Data-parallel training lost a process, or the processes could not meet at all."""


class FallbackWarning(UserWarning):
    """A choice the library made for the user (a fallback split, a resize), announced; the
    command line prints it as one ``warning:`` line."""


class StaleWarning(FallbackWarning):
    """Results shown beside a checkpoint newer than the one they were computed from."""
