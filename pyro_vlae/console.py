"""Where the ``pyro-vlae`` command writes the library's log messages.

Library modules log through module loggers (``logging.getLogger(__name__)``): information
at ``INFO``, announced fallbacks and warnings at ``WARNING``, which Python's last-resort
handler prints to standard error for a program that configures no logging. While a command
runs, :func:`echo_logs` gives the ``pyro_vlae`` logger one :class:`EchoHandler` instead, which
writes each message as it is, like ``click.echo``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import click

#: the root of every library module's logger
LIBRARY = "pyro_vlae"
#: loggers whose messages go to standard error, as their progress does (the rest: standard output)
TO_STDERR = ("pyro_vlae.evaluate.reader",)


class EchoHandler(logging.Handler):
    """Writes a record's message alone (no level or logger name) with ``click.echo``, which
    finds the stream when it writes, so a swapped ``sys.stdout`` (as click's test runner's)
    receives it. A closed output pipe (:class:`BrokenPipeError`) reaches the code that logged,
    which decides what it means (``fit`` stops, :mod:`pyro_vlae.stopping`)."""

    def emit(self, record: logging.LogRecord) -> None:
        err = any(record.name == name or record.name.startswith(f"{name}.") for name in TO_STDERR)
        try:
            click.echo(record.getMessage(), err=err)
        except BrokenPipeError:
            raise
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def echo_logs() -> Iterator[EchoHandler]:
    """While active, the ``pyro_vlae`` logger writes its ``INFO`` messages and above through
    an :class:`EchoHandler` alone (not propagated to the root logger's handlers, which would
    repeat them); its level, handlers and propagation are restored afterwards."""
    logger = logging.getLogger(LIBRARY)
    handler = EchoHandler()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
