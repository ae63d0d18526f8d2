"""Checkpoints of a whole run: one folder per iteration, written atomically, read back
without unpickling anything.

    checkpoints/iter_000003/
      state.json   {"format": 1, "iteration": 3, ...}: everything JSON can hold (config,
                   metrics rows, numpy and environment generator states, counters)
      tensors.pt   a nested dict of tensors (model and optimizer state_dicts, torch
                   generator states), read with torch.load(weights_only=True)
      buffer.npz   the replay buffer, read with np.load(allow_pickle=False)

The files are written into `.iter_000003.tmp-<pid>`, each flushed and fsynced, then the
folder is renamed to `iter_000003` and the parent folder fsynced. So a folder named
`iter_NNNNNN` is always complete, whatever moment the process was killed at; a killed
write leaves only a temporary folder, removed by the next save. The newest `keep`
checkpoints are kept. What goes into `state` and `tensors` is the loop's business
(loop.py); this module only stores, lists and checks them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dynaplan.data import ReplayBuffer
from dynaplan.errors import CheckpointError, CheckpointFormatError, ConfigError

FORMAT = 1  # raise when the meaning of a file changes; readers refuse a larger number
STATE_FILE, TENSORS_FILE, BUFFER_FILE = "state.json", "tensors.pt", "buffer.npz"
_NAME = re.compile(r"^iter_(\d{6,})$")
_LEFTOVER = re.compile(r"^\.iter_\d+\.(tmp|old)-\d+$")


@dataclass(frozen=True)
class Checkpoint:
    """One complete checkpoint as read back from `path`."""

    path: Path
    iteration: int
    state: dict[str, Any]
    tensors: dict[str, Any]
    buffer: ReplayBuffer


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:06d}"


def atomic_write(path: Path, write: Callable[[Any], object]) -> None:
    """Call `write(fileobj)` on a temp file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # open() keeps the umask's mode
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _write_synced(path: Path, write: Callable[[Any], object]) -> None:
    with open(path, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def save_checkpoint(
    folder: Path,
    iteration: int,
    state: dict[str, Any],
    tensors: dict[str, Any],
    buffer: ReplayBuffer,
    keep: int = 2,
) -> Path:
    """Write checkpoint `iteration` atomically into `folder`, keep the newest `keep`;
    return its path. `state` must be JSON-able (NaN allowed), `tensors` plain
    containers (dict, list, tuple) of tensors, numbers and strings."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    name = checkpoint_name(iteration)
    final = folder / name
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        meta = {"format": FORMAT, "iteration": iteration, **state}
        text = json.dumps(meta, default=_json_default, indent=1) + "\n"
        _write_synced(tmp / STATE_FILE, lambda fh: fh.write(text.encode()))
        _write_synced(tmp / TENSORS_FILE, lambda fh: torch.save(tensors, fh))
        _write_synced(tmp / BUFFER_FILE, buffer.save)
        _fsync_dir(tmp)
        if final.exists():  # an unreadable checkpoint a resume fell back past
            _discard(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(folder)
    for old in list_checkpoints(folder)[:-keep]:
        _discard(old)
    return final


def _discard(path: Path) -> None:
    """Remove a checkpoint folder: renamed away first, so a kill during the removal
    never leaves a half-deleted folder under a checkpoint's name."""
    gone = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.rename(path, gone)
    shutil.rmtree(gone, ignore_errors=True)


def _remove_leftovers(folder: Path) -> None:
    for entry in folder.iterdir():
        if _LEFTOVER.match(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoint folders in `folder`, oldest first (none if it is missing)."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _NAME.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def read_checkpoint(path: Path) -> Checkpoint:
    """Read and check one checkpoint folder. A missing, truncated or corrupted file, or
    one holding anything but tensors and plain data, is a one-line CheckpointError
    naming the file; an unknown format number a CheckpointFormatError."""
    state_path = path / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint file {state_path} is unreadable: "
                              f"{_first_line(exc)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint file {state_path} does not hold a mapping")
    version = state.get("format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointFormatError(
            f"checkpoint {path} has an unknown format {version!r} (this dynaplan reads "
            f"format {FORMAT})")
    if version > FORMAT:
        raise CheckpointFormatError(
            f"checkpoint {path} has format {version}, newer than this dynaplan reads "
            f"({FORMAT}); upgrade dynaplan to load it")
    match = _NAME.match(path.name)
    iteration = state.get("iteration")
    if match is None or iteration != int(match.group(1)):
        raise CheckpointError(f"checkpoint file {state_path} is for iteration {iteration!r}, "
                              f"not for its folder {path.name}")
    tensors_path = path / TENSORS_FILE
    try:
        tensors = torch.load(tensors_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupted, or pickled objects: all refused
        raise CheckpointError(f"checkpoint file {tensors_path} is unreadable: "
                              f"{_first_line(exc)}") from None
    if not isinstance(tensors, dict):
        raise CheckpointError(f"checkpoint file {tensors_path} does not hold a mapping")
    try:
        buffer = ReplayBuffer.load(path / BUFFER_FILE)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    return Checkpoint(path=path, iteration=iteration, state=state, tensors=tensors,
                      buffer=buffer)


def load_latest(
    folder: Path, warn: Callable[[str], object] | None = None
) -> Checkpoint | None:
    """The newest readable checkpoint in `folder`, or None when there is none. A damaged
    one is skipped with a `warn` line naming the older one used instead; an unknown
    format stops the search (falling back past it would silently drop work)."""
    newest_first = list_checkpoints(folder)[::-1]
    for k, path in enumerate(newest_first):
        try:
            return read_checkpoint(path)
        except CheckpointFormatError:
            raise
        except CheckpointError as exc:
            if k + 1 == len(newest_first):
                raise CheckpointError(f"no readable checkpoint in {folder}: {exc}") from None
            if warn is not None:
                warn(f"{exc}; falling back to the previous checkpoint {newest_first[k + 1]}")
    return None


def load_models(
    folder: Path,
    dynamics: nn.Module,
    reward: nn.Module,
    warn: Callable[[str], object] | None = None,
    iteration: int | None = None,
) -> Checkpoint:
    """Load a checkpoint's weights and normalizers into the models, in place, and return
    the checkpoint: the newest readable one, or with `iteration` the one written after
    that iteration (it must still be kept)."""
    if iteration is None:
        checkpoint = load_latest(folder, warn)
        if checkpoint is None:
            raise ConfigError(f"no checkpoint in {folder}")
    else:
        path = folder / checkpoint_name(iteration)
        if not path.is_dir():
            kept = [int(p.name.split("_")[1]) for p in list_checkpoints(folder)]
            raise ConfigError(
                f"no checkpoint of iteration {iteration} in {folder} (kept: "
                f"{', '.join(map(str, kept)) or 'none'}; train with --keep-checkpoints K "
                f"to keep more)")
        checkpoint = read_checkpoint(path)
    try:
        dynamics.load_state_dict(checkpoint.tensors["dynamics"])
        reward.load_state_dict(checkpoint.tensors["reward"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {checkpoint.path} does not fit the models: "
                              f"{_first_line(exc)}") from None
    return checkpoint
