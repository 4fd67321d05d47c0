"""Progress of a long loop: a tqdm bar on a terminal (or in a notebook), else plain lines.

Off a terminal (a log file, a pipe, a batch job) a bar's carriage-return redraws make an
unreadable log, so :class:`Progress` then prints one line per report instead:
``step 400/1000  elbo -85.2 ...  (12.3 steps/s, 49 s left)`` for ``fit``,
``encode 512/10000  (840.1 points/s, 11 s left)`` for ``encode``, ``IWAE-1000 50/500 ...`` for
``evaluate``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from tqdm.auto import tqdm

#: seconds after the first thing before the forecast of the rest
FORECAST_AFTER = 5.0
#: a rest longer than this (seconds) comes with the advice of a shorter option
LONG = 3600.0


class Progress:
    """Counts ``total`` things (``unit``), from ``initial``.

    Once ``forecast_after`` seconds have passed after the first thing (which may include
    start-up work), one line says how long the rest will take, at the rate since; when that is
    more than :data:`LONG` seconds, ``advice(rate)`` (things per second) adds how to make it
    shorter. The forecast is printed with ``enabled`` false too when the rest is that long.

    :param enabled: show anything at all.
    :param echo: where the plain lines go.
    :param prefix: a plain line's first word.
    :param desc: the bar's label.
    :param what: what the forecast is of, e.g. ``"training"`` (default: ``prefix``).
    :param advice: a shorter option, given the rate; ``None`` gives none.
    """

    def __init__(
        self,
        total: int,
        enabled: bool,
        echo: Callable[[str], None],
        *,
        initial: int = 0,
        unit: str = "step",
        prefix: str = "step",
        desc: str | None = None,
        what: str | None = None,
        advice: Callable[[float], str] | None = None,
        forecast_after: float = FORECAST_AFTER,
    ) -> None:
        notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)
        self.enabled = enabled
        self.lines = enabled and not (notebook or sys.stderr.isatty())
        self.total, self.echo, self.unit, self.prefix = total, echo, unit, prefix
        self.bar = tqdm(
            total=total, initial=initial, disable=not enabled or self.lines, unit=unit, dynamic_ncols=True, desc=desc,
        )
        self.done = self.first = initial
        self.started = time.perf_counter()
        self.what, self.advice, self.forecast_after = what or prefix, advice, forecast_after
        self.mark: tuple[int, float] | None = None  # (done, time) after the first thing
        self.forecast_made = False

    def update(self, n: int = 1, text: str | None = None) -> None:
        """Count ``n`` more; with ``text`` (possibly empty) this is a report: the bar shows
        ``text``, or off a terminal one line is printed."""
        self.bar.update(n)
        self.done += n
        self._forecast()
        if text is None:
            return
        if text:
            self.bar.set_postfix_str(text)
        if self.lines:
            rate = (self.done - self.first) / max(time.perf_counter() - self.started, 1e-9)
            middle = f"  {text}" if text else ""
            left = f", {duration((self.total - self.done) / rate)} left" if 0 < self.done < self.total and rate else ""
            self.echo(f"{self.prefix} {self.done}/{self.total}{middle}  ({rate:.1f} {self.unit}s/s{left})")

    def _forecast(self) -> None:
        """Say once how long the rest will take (see the class)."""
        if self.forecast_made or self.done >= self.total:
            return
        now = time.perf_counter()
        if self.mark is None:
            self.mark = (self.done, now)
            return
        done, since = self.mark
        if now - since < self.forecast_after or self.done == done:
            return
        self.forecast_made = True
        rate = (self.done - done) / (now - since)
        left = (self.total - self.done) / rate
        if not self.enabled and left < LONG:
            return
        line = (f"{self.what}: about {duration(left)} left for {self.total - self.done:,} more {self.unit}s "
                f"at {rate:.3g} {self.unit}s/s")
        if left >= LONG and self.advice is not None:
            line += f"; {self.advice(rate)}"
        if self.bar.disable:
            self.echo(line)
        else:
            self.bar.write(line)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more, reporting whenever another tenth of the total is done (off a
        terminal: about ten lines in all)."""
        tenth = max(1, math.ceil(self.total / 10))
        report = (self.done + n) // tenth > self.done // tenth or self.done + n >= self.total
        self.update(n, "" if report else None)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def duration(seconds: float) -> str:
    """``seconds`` as people say it: ``40 s``, ``12 min``, ``3 h 20 min``, ``2.5 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds / 86400:.1f} days"


def stderr_line(line: str) -> None:
    """Print ``line`` to standard error, where progress goes when no ``echo`` is given."""
    print(line, file=sys.stderr)
