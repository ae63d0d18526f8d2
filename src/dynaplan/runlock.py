"""One writer per run folder: an advisory lock held for the whole of a train, a resume or a
sweep trial.

The lock is `flock` on the folder's `.lock` file, which holds the process id of its
holder. A second process that asks for it is refused at once, in one line naming that
process; the operating system releases the lock when its holder exits, however it
exits, so a lock file left by a killed process is simply taken over. Where `fcntl` is
missing (not a POSIX system) runs go unlocked.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from dynaplan.errors import ConfigError
from dynaplan.safe_files import checked

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunLocked(ConfigError):
    """Another process holds the run folder's lock."""


class RunLock:
    """`with RunLock(run_dir):` holds the folder's lock for the block (the folder must
    exist)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        path = checked(self.run_dir, self.run_dir / LOCK_FILE)
        if fcntl is None:
            return self
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            raise ConfigError(f"cannot lock run folder {self.run_dir}: "
                              f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(f"{self.run_dir} is in use by process {holder} (another dynaplan "
                            "train, resume or sweep of this run); wait for it to end, or "
                            "stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
