"""Numbers that may be missing, in JSON and in text: the one place that turns NaN and
infinities into ``None`` (JSON's ``null``) and ``None`` into a dash.

A number is missing when it is undefined (an ordering score without two abstraction levels,
MIG of a one-unit layer, a change over a zero baseline): it is ``None`` in every result
(:mod:`pyro_vlae.evaluate.results`) and in ``evaluation.json``, and "–" in every table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

#: how a missing number is shown
DASH = "–"


def json_safe(value: Any, digits: int | None = None) -> Any:
    """A copy of ``value`` (nested dicts, lists, tuples of numbers) that JSON can hold: NaN and
    infinities become ``None``, tuples lists, and every float is rounded to ``digits``
    decimals when given."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if digits is None else round(value, digits)
    if isinstance(value, dict):
        return {k: json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, digits) for v in value]
    return value


def rounded(array: np.ndarray, digits: int = 4) -> list:
    """An array as nested lists rounded to ``digits`` decimals, NaN as ``None``."""
    return json_safe(np.round(np.asarray(array, dtype=float), digits).tolist())


def dash(value: float | None, digits: int = 2, why: str | None = None) -> str:
    """``value`` with ``digits`` decimals; a missing one (``None`` or NaN) is "–", followed by
    ``why`` in brackets when given."""
    if value is None or not math.isfinite(value):
        return DASH if why is None else f"{DASH} ({why})"
    return f"{value:.{digits}f}"


def cells(values: Iterable[float | None], width: int) -> str:
    """Table cells of ``values``, two decimals each (:func:`dash`), right-aligned in ``width``."""
    return "".join(f"{dash(v):>{width}}" for v in values)


__all__ = ["DASH", "cells", "dash", "json_safe", "rounded"]
