"""A training run's metrics: :class:`Metrics`, the one definition of a row of ``metrics.csv``
(:data:`pyro_vlae.run_folder.METRICS`), and :class:`MetricsLog`, the file's append-only writer.

The training loop (:func:`pyro_vlae.run.loop`) measures a :class:`Metrics` every ``log_every``
steps and hands it, typed, to its hooks (:mod:`pyro_vlae.hooks`): the log writes it as text,
a tracker (:mod:`pyro_vlae.tracking`) receives :meth:`Metrics.scalars`, the same numbers as
floats, and the loss curve (:func:`pyro_vlae.plotting.plot_metrics`) reads the file back with
:func:`read_metrics`. Nothing else knows the file's columns.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from .atomic import DISK_ERRORS, storage_error
from .errors import CheckpointError

__all__ = ["Metrics", "MetricsLog", "Precision", "read_metrics"]


@dataclass(frozen=True)
class Precision:
    """How ``metrics.csv`` writes a number: ``digits`` significant digits, or with ``fixed``,
    ``digits`` after the decimal point."""

    digits: int
    fixed: bool = False

    def text(self, value: float) -> str:
        """``value`` as the file holds it."""
        return format(value, f".{self.digits}{'f' if self.fixed else 'g'}")

    def round(self, value: float) -> float:
        """The number :meth:`text` writes, as a float: ``value`` rounded half to even on its
        exact binary value, as :func:`format` rounds (``float(self.text(value))``, without text)."""
        if self.fixed:
            return round(value, self.digits)
        if value == 0 or not math.isfinite(value):
            return value
        exact = Decimal(value)
        return float(exact.quantize(Decimal(1).scaleb(exact.adjusted() + 1 - self.digits), ROUND_HALF_EVEN))


#: β, the β-weighted loss, the ELBO and its reconstruction term
SIX_DIGITS = Precision(6)
#: a layer's KL term
FIVE_DIGITS = Precision(5)
#: seconds, to the millisecond
MILLISECONDS = Precision(3, fixed=True)


@dataclass(frozen=True)
class Metrics:
    """The metrics of training step ``step``: the KL weight β it trained with, its β-weighted
    loss per data point, the ELBO, reconstruction term and each latent site's KL term on its
    batch (``kl``, by site name, in the model's order), and the seconds trained so far.

    This class is the schema of ``metrics.csv``: its columns (:meth:`columns`), each number's
    :class:`Precision` (:meth:`numbers`) and how a row reads back (:func:`read_metrics`)."""

    step: int
    beta: float
    loss: float
    elbo: float
    recon: float
    kl: Mapping[str, float]
    seconds: float

    @staticmethod
    def kl_column(site: str) -> str:
        """The column holding the KL term of the latent site ``site``."""
        return f"kl_{site}"

    @classmethod
    def columns(cls, sites: Sequence[str]) -> list[str]:
        """The columns of ``metrics.csv`` for a model with latent sites ``sites``: the step, β,
        the loss, the ELBO and its reconstruction term, each layer's KL, the seconds."""
        return ["step", "beta", "loss", "elbo", "recon", *map(cls.kl_column, sites), "seconds"]

    def numbers(self) -> dict[str, tuple[float, Precision]]:
        """Every column but the step, in file order: its value and the precision it is written with."""
        return {
            "beta": (self.beta, SIX_DIGITS), "loss": (self.loss, SIX_DIGITS),
            "elbo": (self.elbo, SIX_DIGITS), "recon": (self.recon, SIX_DIGITS),
            **{self.kl_column(site): (kl, FIVE_DIGITS) for site, kl in self.kl.items()},
            "seconds": (self.seconds, MILLISECONDS),
        }

    def scalars(self) -> dict[str, float]:
        """Every column but the step, each number as ``metrics.csv`` holds it, so that every
        copy of a run's metrics (a tracker's) equals the file."""
        return {column: precision.round(value) for column, (value, precision) in self.numbers().items()}


def read_metrics(path: str | Path, sites: Sequence[str]) -> list[Metrics]:
    """The rows of the ``metrics.csv`` at ``path`` of a model with latent sites ``sites``."""
    with open(path, newline="") as f:
        return [
            Metrics(
                step=int(row["step"]), beta=float(row["beta"]), loss=float(row["loss"]),
                elbo=float(row["elbo"]), recon=float(row["recon"]),
                kl={site: float(row[Metrics.kl_column(site)]) for site in sites}, seconds=float(row["seconds"]),
            )
            for row in csv.DictReader(f)
        ]


class MetricsLog:
    """``metrics.csv``, one row per logged step, append-only: every row is flushed as it is
    written and never rewritten; :meth:`record` writes a :class:`Metrics`, the only place its
    numbers become text.

    A run that starts at ``step`` (the checkpoint's step when resuming, else 0) keeps the rows
    up to ``step`` and cuts the file right after them, dropping what a killed run logged past
    its last checkpoint (the resumed run logs those steps again) and a row half-written by the
    kill. The cut is one ``truncate`` at the end of the last row kept, and only when there is
    something to drop: the kept rows are never copied, rewritten or held in memory, so no
    moment of a resume can lose them. :meth:`sync` makes the rows durable before a checkpoint
    refers to them.
    """

    def __init__(self, path: Path, fields: list[str], step: int = 0) -> None:
        self.path, self.fields = path, list(fields)
        end = self._end_of_kept_rows(step)
        if end is None:  # no file yet, or one a new run starts over
            self._file = open(path, "w", newline="")
            csv.writer(self._file).writerow(self.fields)
            self._file.flush()
        else:
            if end < path.stat().st_size:
                os.truncate(path, end)
            self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.fields)

    def _end_of_kept_rows(self, step: int) -> int | None:
        """Byte offset just after the last complete row with a step <= ``step``, or ``None``
        when the file is to be started anew (missing, or a new run's with other columns)."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as f:
            header = f.readline()
            columns = next(csv.reader([header.decode("utf-8", "replace")]), [])
            if columns != self.fields or not header.endswith(b"\n"):
                if step == 0 or not header:
                    return None
                raise CheckpointError(
                    f"{self.path} has the columns {', '.join(columns)}, not this run's ({', '.join(self.fields)})",
                    f"move {self.path.name} away to resume; it is left as it was",
                )
            end = f.tell()
            for line in iter(f.readline, b""):
                if not line.endswith(b"\n"):
                    break  # half-written by a kill
                try:
                    if int(line.split(b",", 1)[0]) > step:
                        break
                except ValueError:
                    break
                end = f.tell()
        return end

    def record(self, metrics: Metrics) -> None:
        """Append the row of ``metrics``, each number written with its :class:`Precision`."""
        self.write({"step": metrics.step, **{c: p.text(v) for c, (v, p) in metrics.numbers().items()}})

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (``{column: value}``) and flush it to the operating system."""
        try:
            self._writer.writerow(row)
            self._file.flush()
        except OSError as err:
            raise (storage_error(self.path, err) if err.errno in DISK_ERRORS else err) from err

    def sync(self) -> None:
        """Make every written row durable (``fsync``), before a checkpoint refers to it."""
        if self._file.closed:  # closed: already synced
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:
            raise (storage_error(self.path, err) if err.errno in DISK_ERRORS else err) from err

    def close(self) -> None:
        """Sync and close the file."""
        self.sync()
        self._file.close()
