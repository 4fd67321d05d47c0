"""``evaluation.json`` of a run folder: written atomically, read back checked.

The file is :meth:`Evaluation.to_json <pyro_vlae.evaluate.results.Evaluation.to_json>`;
:func:`load_evaluation` gives it as written, so that ``report`` and ``compare`` read the files
of earlier versions too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..run_folder import EVALUATION, write_json
from .results import Evaluation


def write_evaluation(folder: str | Path, evaluation: Evaluation) -> Path:
    """Write ``evaluation`` to ``folder/evaluation.json``, atomically (a reader sees the old
    file or the new one, never half of one)."""
    return write_json(Path(folder) / EVALUATION, evaluation.to_json())


def load_evaluation(path: str | Path) -> dict[str, Any]:
    """The ``evaluation.json`` of the run folder ``path``, as JSON
    (:meth:`Evaluation.from_json <pyro_vlae.evaluate.results.Evaluation.from_json>` reads it)."""
    file = Path(path) / EVALUATION
    if not file.exists():
        raise CheckpointError(f"{path} has no {EVALUATION}", f"run `pyro-vlae evaluate {path}` first")
    try:
        results = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file} is corrupt ({err})", f"re-run `pyro-vlae evaluate {path}`") from err
    if not isinstance(results, dict) or not {"elbo", "iwae", "layers"} <= results.keys():
        raise CheckpointError(f"{file} is not an evaluation written by `pyro-vlae evaluate`",
                              f"re-run `pyro-vlae evaluate {path}`")
    return results


__all__ = ["EVALUATION", "load_evaluation", "write_evaluation"]
