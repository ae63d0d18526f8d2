"""How the commands print: progress-bar-safe lines, or nothing with --quiet; the
library's logged warnings as the CLI's warning lines."""

from __future__ import annotations

import logging
from collections.abc import Callable


def echo_for(quiet: bool) -> Callable[[str], object]:
    if quiet:
        return lambda *a, **k: None
    from tqdm.auto import tqdm

    return tqdm.write


class _WarningLine(logging.Handler):
    """A library warning (`logging.getLogger("dynaplan.…").warning`) as the CLI's own
    warning line: `dynaplan: warning: …` on stderr, beside any progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        from dynaplan.episodes import warn_stderr

        warn_stderr(record.getMessage())


def show_library_warnings() -> None:
    """Print the library's warnings (and worse) as warning lines; once per process."""
    logger = logging.getLogger("dynaplan")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(logging.WARNING))
