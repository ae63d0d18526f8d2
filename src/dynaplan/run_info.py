"""run.json: who ran a run, with what, where; one entry per session (the first `train`,
then each `resume`), so a resumed run keeps its history.

    {"format": 1, "sessions": [{
        "kind": "train" or "resume", "resumed_after": the checkpoint's iteration or null,
        "started": "2026-01-31T12:00:00+00:00", "command": sys.argv, "cwd": ...,
        "dynaplan": version, "commit": git commit of the code (+dirty) or "unknown",
        "python", "torch", "numpy", "gymnasium", "mujoco" (null where absent): versions,
        "device", "device_name", "torch_threads", "hostname", "pid",
        "ended": ..., "outcome": "completed", "stopped by SIGINT after iteration 3",
                                 "failed: ..." (once the session has ended)}]}

`command` is the command line of the process (from Python: the script's). The file is
rewritten whole through safe_files at the start and at the end of each session.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import socket
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

import dynaplan
from dynaplan.runs import RUN_INFO, code_version
from dynaplan.safe_files import OutputError, write_text

FORMAT = 1
_log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    """The processor's model name where Linux tells it, else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def _commit() -> str:
    return code_version()  # git runs once per process


def session(kind: str, device: torch.device, resumed_after: int | None = None) -> dict:
    """This session's entry, as it starts."""
    return {
        "kind": kind,
        "resumed_after": resumed_after,
        "started": _now(),
        "command": list(sys.argv),
        "cwd": os.getcwd(),
        "dynaplan": dynaplan.__version__,
        "commit": _commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "gymnasium": _version("gymnasium"),
        "mujoco": _version("mujoco"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        _cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }


class RunInfo:
    """run.json of `run_dir` with this session's entry appended (a fresh run: the only
    one) and written; `end` notes how the session ended."""

    def __init__(self, run_dir: Path, entry: dict, fresh: bool) -> None:
        self.run_dir, self.path = run_dir, run_dir / RUN_INFO
        self.sessions = [] if fresh else self._earlier()
        self.entry = entry
        self.sessions.append(entry)
        self._write()

    def _earlier(self) -> list[dict]:
        """The sessions run.json holds so far (none for a run from before run.json)."""
        if not self.path.is_file():
            return []
        try:
            data = json.loads(self.path.read_text())
            sessions = data["sessions"]
            if not isinstance(sessions, list):
                raise TypeError("sessions is not a list")
            return sessions
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log.warning(f"{self.path} is not readable ({exc}); it starts again with this "
                         "session")
            return []

    def _write(self) -> None:
        text = json.dumps({"format": FORMAT, "sessions": self.sessions}, indent=2) + "\n"
        write_text(self.path, text, self.run_dir)

    def update(self, **fields: object) -> None:
        """Change this session's entry (written at once where it changes)."""
        if any(self.entry.get(k) != v for k, v in fields.items()):
            self.entry.update(fields)
            self._write()

    def end(self, outcome: str) -> None:
        """Note the session's end; a failed write loses only the note (the session may be
        ending for that very reason)."""
        self.entry.update(ended=_now(), outcome=outcome)
        try:
            self._write()
        except OutputError as exc:
            _log.debug(f"run.json: the session's end not written ({exc})")
