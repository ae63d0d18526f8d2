"""TensorBoard event files of a run's metrics: RUN_DIR/tensorboard/events.out.tfevents.*

After every iteration, each column of its metrics.csv row (the same namespaced names:
iteration, env_steps, train/return, eval/return, model/..., planner/..., time/...) is one
scalar at step = env_steps, the environment steps so far; a value the row lacks or that
is not finite is left out. `tensorboard --logdir runs` shows every run.

The records are TensorBoard's own Event protos (from the tensorboard package, the
optional extra dynaplan[tensorboard]) in TFRecord framing. dynaplan creates the file
itself, exclusively and never through a link, in a folder checked by safe_files, then
appends to it and flushes after each row: it is the one file of a run folder that is not
written atomically (a run killed mid-write leaves a last record cut short, which
TensorBoard skips).

Each session writes a file of its own. A resumed session's file starts with a session
START event at the first step after its checkpoint, which tells TensorBoard to drop what
an earlier session wrote from that step on (iterations that are now redone), and holds
only the rows after the checkpoint.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dynaplan.errors import ConfigError
from dynaplan.safe_files import OutputError, checked, make_dirs

_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)


def why_not() -> str | None:
    """None when event files can be written here, else why not (one phrase)."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: F401
    except ImportError:
        return "the tensorboard package is not installed (pip install dynaplan[tensorboard])"
    except Exception as exc:  # a tensorboard that does not fit its protobuf, say
        return f"the tensorboard package does not import ({type(exc).__name__}: {exc})"
    return None


def require(mode: str) -> None:
    """Refuse `tensorboard on` where no event file can be written (before the run writes
    anything)."""
    if mode == "on":
        reason = why_not()
        if reason is not None:
            raise ConfigError(f"tensorboard on: {reason}; or run with --tensorboard off")


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C (Castagnoli) of `data`, rotated and offset."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(data: bytes) -> bytes:
    """One TFRecord: length, its checksum, the data, its checksum (little-endian)."""
    header = len(data).to_bytes(8, "little")
    return (header + masked_crc32c(header).to_bytes(4, "little") + data
            + masked_crc32c(data).to_bytes(4, "little"))


class TensorBoardLog:
    """This session's event file in `folder` (inside the run folder `root`). `resumed_after`:
    the env_steps of the last row the session resumes after (None: a fresh run)."""

    def __init__(self, folder: Path, root: Path, resumed_after: int | None = None) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        self._event, self._summary = event_pb2, summary_pb2
        make_dirs(root, folder)
        self.path, fd = self._create(folder, root)
        self._file = os.fdopen(fd, "ab")
        self._write([event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")])
        if resumed_after is not None:
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._write([event_pb2.Event(wall_time=time.time(), step=resumed_after + 1,
                                         session_log=start)])

    @staticmethod
    def _create(folder: Path, root: Path) -> tuple[Path, int]:
        """A new file, named so that files sort by when they were begun (TensorBoard reads
        a folder's files in name order)."""
        host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())
        for attempt in range(100):
            path = folder / (f"events.out.tfevents.{time.time_ns():020d}.{host}."
                             f"{os.getpid()}.{attempt}")
            try:
                return path, os.open(checked(root, path), _FLAGS, 0o666)
            except FileExistsError:
                continue
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise OutputError(f"cannot create an event file in {folder}: every name is taken")

    def append(self, row: Mapping[str, Any]) -> None:
        """One metrics row as scalars at step row["env_steps"]."""
        values = [self._summary.Summary.Value(tag=key, simple_value=float(value))
                  for key, value in row.items()
                  if isinstance(value, (int, float)) and math.isfinite(value)]
        self._write([self._event.Event(wall_time=time.time(), step=int(row["env_steps"]),
                                       summary=self._summary.Summary(value=values))])

    def _write(self, events: list[Any]) -> None:
        try:
            self._file.write(b"".join(_record(e.SerializeToString()) for e in events))
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # the rows were flushed one by one; a close that fails loses none


def open_log(mode: str, folder: Path, root: Path,
             resumed_after: int | None = None) -> TensorBoardLog | None:
    """The session's event file, or None with `tensorboard off` or, under auto, where the
    tensorboard package does not import."""
    if mode == "off" or (mode == "auto" and why_not() is not None):
        return None
    return TensorBoardLog(folder, root, resumed_after)
