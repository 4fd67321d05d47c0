"""Checkpoints: written atomically, read with clear errors."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..errors import CheckpointError

FORMAT = "pyro-vlae-checkpoint/1"
CHECKPOINT = "checkpoint.pt"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, fsync,
    rename), so a crash never leaves a half-written file in place of a good one."""
    path = Path(path)
    payload = {"format": FORMAT, "version": __version__, **payload}
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Accepts a run folder or the file itself. Raises :class:`CheckpointError` for a missing,
    unreadable, corrupt or foreign file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise CheckpointError(
            f"no checkpoint at {path}",
            "pass a run folder written by `pyro-vlae fit` (it holds checkpoint.pt)",
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(err).__name__})",
            "restore it from a backup, or retrain; pyro-vlae never overwrites a good one",
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a pyro-vlae checkpoint",
            "pass a checkpoint.pt written by `pyro-vlae fit`",
        )
    return payload
