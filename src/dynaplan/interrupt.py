"""Stopping a run on Ctrl-C (SIGINT) or SIGTERM without losing a checkpoint.

Inside a `StopSignals` block either signal raises `RunInterrupted` at once: the
iteration in progress is abandoned, and `--resume` redoes it from the last checkpoint
(with the same result, since every generator is restored). Inside `deferred()`, the
writing of a checkpoint and of the logs that go with it, a signal waits until the block
has finished, so a stop never costs a checkpoint that was being written.
"""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(BaseException):
    """A stop request. A BaseException, like KeyboardInterrupt, so that no `except
    Exception` (e.g. the guard around `env.step`) swallows it. The loop fills in
    `run_dir` and `iteration` (the last checkpointed one, None before the first)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_dir: Path | None = None
        self.iteration: int | None = None

    @property
    def exit_status(self) -> int:
        """128 + the signal number, as a shell reports it: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def stopped(self) -> str:
        """Where the run stopped: "stopped by SIGINT after iteration 3"."""
        name = signal.Signals(self.signum).name
        if self.run_dir is None:
            return f"stopped by {name} before the run folder was written"
        where = ("before the first checkpoint" if self.iteration is None
                 else f"after iteration {self.iteration}")
        return f"stopped by {name} {where}"

    def message(self) -> str:
        """One line: where the run stopped, the command that continues it and, once it
        has a checkpoint, those that draw its figures and a video of its planner."""
        if self.run_dir is None:
            return self.stopped()
        run = shlex.quote(str(self.run_dir))
        text = f"{self.stopped()}; resume with: dynaplan train --resume {run}"
        if self.iteration is not None:
            text += (f"; figures: dynaplan plot {run}; a video of its planner: dynaplan eval "
                     f"{run} --video")
        return text


class StopSignals:
    """Context manager: SIGINT and SIGTERM raise RunInterrupted while it is active (in
    the main thread only; elsewhere it does nothing). The previous handlers come back
    on exit."""

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}
        self._deferring = False
        self._pending: int | None = None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring:
            self._pending = signum
            return
        raise RunInterrupted(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A block a signal does not break: a stop requested inside it is raised when
        it has finished."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending is not None:
            signum, self._pending = self._pending, None
            raise RunInterrupted(signum)
