"""Where dynaplan's messages go: Python `logging`, under the `dynaplan` logger.

Every module logs to its own logger, `logging.getLogger(__name__)` (dynaplan.loop,
dynaplan.episodes, dynaplan.runs, ...), all children of `dynaplan`. Levels: INFO for the
lines a run prints as it goes (random data, each episode, each iteration, the run
folder), WARNING for what a user should know (a dropped episode, a checkpoint passed
over), DEBUG for what was written where and how long it took.

The library is quiet by default: the package logger has a NullHandler, so from Python
nothing is printed until the user configures logging (`logging.basicConfig(level=
logging.INFO)` shows the run's lines). The command line attaches its own handler
(app/output.py), with --quiet (warnings only) and -v (debug).

The `echo=` and `warn=` parameters of `loop.train` and the acting functions still take
a callable that receives each line instead of the logger; None (their default) logs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

PACKAGE = "dynaplan"
"""The package logger; its NullHandler is attached in dynaplan/__init__.py, so that it is
there whichever module logs first."""

Line = Callable[[str], object]
"""Receives one message, a line without its newline."""


def info_or(echo: Line | None, log: logging.Logger) -> Line:
    """`echo` where one is given, else an INFO record of `log` per line."""
    return echo if echo is not None else log.info


def warning_or(warn: Line | None, log: logging.Logger) -> Line:
    """`warn` where one is given, else a WARNING record of `log` per line."""
    return warn if warn is not None else log.warning
