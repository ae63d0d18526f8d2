"""Checkpoints of a whole run: one folder per iteration, written atomically, with a manifest
of hashes, read back without unpickling anything (checkpoint_read.py).

    checkpoints/iter_000003/
      state.json     {"format": 2, "iteration": 3, ...}: everything JSON can hold (config,
                     metrics rows, numpy and environment generator states, counters)
      tensors.pt     a nested dict of tensors (model and optimizer state_dicts, torch
                     generator states), read with torch.load(weights_only=True)
      buffer.npz     the replay buffer, read with np.load(allow_pickle=False)
      manifest.json  {"manifest": 1, "iteration": 3, "files": {name: sha256 hex}}: the
                     SHA-256 of each file above, written last

The files are written into `.iter_000003.tmp-<pid>`, each flushed and fsynced, then the
folder is renamed to `iter_000003` and the parent folder fsynced. So a folder named
`iter_NNNNNN` is always complete, whatever moment the process was killed at; a killed
write leaves only a temporary folder, removed by the next save (never one of a process
still alive). The newest `keep` checkpoints are kept. What goes into `state` and
`tensors` is the loop's business (loop.py); this module only stores and lists them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dynaplan.data import ReplayBuffer
from dynaplan.safe_files import fsync_dir, make_dirs

FORMAT = 2
"""Raise when the meaning of a file changes; readers refuse a larger number. Format 2
checkpoints carry a manifest; format 1 ones (dynaplan before it) load unverified."""
STATE_FILE, TENSORS_FILE, BUFFER_FILE = "state.json", "tensors.pt", "buffer.npz"
MANIFEST_FILE = "manifest.json"
HASHED = (STATE_FILE, TENSORS_FILE, BUFFER_FILE)
NAME = re.compile(r"^iter_(\d{6,})$")
_LEFTOVER = re.compile(r"^\.iter_\d+\.(tmp|old)-(\d+)$")
PAUSE_ENV = "DYNAPLAN_TEST_CHECKPOINT_PAUSE"
"""A test hook: set to "ITERATION:FILE", the checkpoint write of that iteration creates
FILE after its state.json and waits a minute before the rest, so that a test can kill
the process inside the write (tests/test_fault_suite.py). Unset in every ordinary run."""


@dataclass(frozen=True)
class Checkpoint:
    """One complete checkpoint as read back from `path`; `verified`: its manifest's hashes
    matched (False only for a format 1 checkpoint, which has none)."""

    path: Path
    iteration: int
    state: dict[str, Any]
    tensors: dict[str, Any]
    buffer: ReplayBuffer
    verified: bool = True


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:06d}"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0),
                 0o666)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _serialized(write: Any) -> bytes:
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def save_checkpoint(folder: Path, iteration: int, state: dict[str, Any],
                    tensors: dict[str, Any], buffer: ReplayBuffer, keep: int = 2,
                    root: Path | None = None) -> Path:
    """Write checkpoint `iteration` atomically into `folder` (which must stay inside
    `root`, default its parent: the run folder), keep the newest `keep`; return its path.
    `state` must be JSON-able (NaN allowed), `tensors` plain containers (dict, list,
    tuple) of tensors, numbers and strings. An OSError (a full disk, a read-only folder)
    or torch's own write error propagates, the previous checkpoints untouched."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    make_dirs(folder.parent if root is None else root, folder)
    _remove_leftovers(folder)
    name = checkpoint_name(iteration)
    final = folder / name
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        meta = {"format": FORMAT, "iteration": iteration, **state}
        files = {
            STATE_FILE: (json.dumps(meta, default=_json_default, indent=1) + "\n").encode(),
            TENSORS_FILE: _serialized(lambda fh: torch.save(tensors, fh)),
            BUFFER_FILE: _serialized(buffer.save),
        }
        for k, (file, data) in enumerate(files.items()):
            _write_synced(tmp / file, data)
            if k == 0:
                _test_pause(iteration, tmp)
        manifest = {"manifest": 1, "iteration": iteration,
                    "files": {file: hashlib.sha256(data).hexdigest()
                              for file, data in files.items()}}
        _write_synced(tmp / MANIFEST_FILE, (json.dumps(manifest, indent=1) + "\n").encode())
        fsync_dir(tmp)
        if final.exists() or final.is_symlink():  # one a resume fell back past
            _discard(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(folder)
    for old in list_checkpoints(folder)[:-keep]:
        _discard(old)
    return final


def _test_pause(iteration: int, tmp: Path) -> None:
    """The PAUSE_ENV test hook (a no-op unless it is set for this iteration)."""
    at, _, marker = os.environ.get(PAUSE_ENV, "").partition(":")
    if marker and at == str(iteration):
        Path(marker).write_text(str(tmp))
        time.sleep(60)


def _discard(path: Path) -> None:
    """Remove a checkpoint folder: renamed away first, so a kill during the removal
    never leaves a half-deleted folder under a checkpoint's name. A symbolic link is
    removed as a link (what it points to is left alone)."""
    gone = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.rename(path, gone)
    if gone.is_symlink():
        gone.unlink()
    else:
        shutil.rmtree(gone, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier write of this very process (one writer per run)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(folder: Path) -> None:
    """Temporary folders of killed writes (never those of a process still running)."""
    for entry in folder.iterdir():
        m = _LEFTOVER.match(entry.name)
        if m and not _alive(int(m.group(2))):
            if entry.is_symlink():
                entry.unlink()
            else:
                shutil.rmtree(entry, ignore_errors=True)


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoint folders in `folder`, oldest first (none if it is missing);
    symbolic links are not checkpoints."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := NAME.match(p.name)) and p.is_dir() and not p.is_symlink()]
    return [p for _, p in sorted(found)]
