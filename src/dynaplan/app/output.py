"""How the commands print: the library's log records (dynaplan/logs.py) as lines beside the
progress bars. INFO lines go to stdout as the message alone; warnings and errors to stderr
as `dynaplan: warning: ...`; with -v, DEBUG lines to stderr as `dynaplan: debug: ...`;
with --quiet, warnings and errors only."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from dynaplan.logs import PACKAGE

_log = logging.getLogger("dynaplan.app")


class LineHandler(logging.Handler):
    """One line per record through tqdm.write, so that it lands above a progress bar; the
    streams are looked up when a record comes (a test's captured ones, say)."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        try:
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                tqdm.write(f"dynaplan: {record.levelname.lower()}: {message}", file=sys.stderr)
            elif record.levelno < logging.INFO:
                tqdm.write(f"dynaplan: debug: {message}", file=sys.stderr)
            else:
                tqdm.write(message, file=sys.stdout)
        except Exception:
            self.handleError(record)


def setup_logging(quiet: bool = False, verbose: bool = False) -> Callable[[], None]:
    """Show the dynaplan loggers' records on the terminal: INFO and up, WARNING and up
    (`quiet`) or DEBUG and up (`verbose`). Returns what undoes it (main calls it when the
    command ends, so that a command run from Python leaves logging as it was)."""
    logger = logging.getLogger(PACKAGE)
    handler = LineHandler()
    before = logger.level
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logger.addHandler(handler)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(before)

    return undo


def shows_logs() -> bool:
    """Whether setup_logging's handler is on (in this process)."""
    return any(isinstance(h, LineHandler) for h in logging.getLogger(PACKAGE).handlers)


def echo_for(quiet: bool) -> Callable[[str], object]:
    """A command's own lines: INFO records, which --quiet leaves out."""
    return _log.info
