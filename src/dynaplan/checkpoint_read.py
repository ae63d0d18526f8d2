"""Reading checkpoints back (checkpoint.py writes them): every file checked against the
manifest's SHA-256 and the folder's iteration before it is parsed, nothing unpickled, and
the newest checkpoint that reads (and, for a resume, that fits the run) used, with one
warning line for each one passed over.

A format 1 checkpoint (written before checkpoints had manifests) loads unverified, with a
note; a format 2 one without its manifest, or with a file whose hash differs, is damaged.
A format newer than this dynaplan's stops the search: falling back past it would silently
drop work.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from dynaplan.checkpoint import (
    BUFFER_FILE,
    FORMAT,
    HASHED,
    MANIFEST_FILE,
    NAME,
    STATE_FILE,
    TENSORS_FILE,
    Checkpoint,
    checkpoint_name,
    list_checkpoints,
)
from dynaplan.data import ReplayBuffer
from dynaplan.errors import CheckpointError, CheckpointFormatError, ConfigError

Warn = Callable[[str], object]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint file {path} is unreadable: "
                              f"{exc.strerror or exc}") from None


def _manifest(path: Path, iteration: int) -> dict[str, str]:
    """The manifest's hash per file, after checking that it is whole and for `iteration`."""
    file = path / MANIFEST_FILE
    try:
        manifest = json.loads(_bytes(file))
    except ValueError as exc:
        raise CheckpointError(f"checkpoint file {file} is unreadable: {first_line(exc)}") \
            from None
    hashes = manifest.get("files") if isinstance(manifest, dict) else None
    if (not isinstance(hashes, dict) or set(hashes) != set(HASHED)
            or not all(isinstance(h, str) for h in hashes.values())):
        raise CheckpointError(f"checkpoint file {file} does not list the checkpoint's files")
    if manifest.get("iteration") != iteration:
        raise CheckpointError(f"checkpoint file {file} is for iteration "
                              f"{manifest.get('iteration')!r}, not for its folder {path.name}")
    return hashes


def read_checkpoint(path: Path, warn: Warn | None = None) -> Checkpoint:
    """Read and check one checkpoint folder. A missing, truncated, corrupted or swapped
    file (its hash is not the manifest's), or one holding anything but tensors and plain
    data, is a one-line CheckpointError naming the file; an unknown format a
    CheckpointFormatError. A format 1 checkpoint is read unverified (`warn` says so)."""
    match = NAME.match(path.name)
    if match is None:
        raise CheckpointError(f"{path} is not a checkpoint folder")
    iteration = int(match.group(1))
    raw = {name: _bytes(path / name) for name in HASHED}
    state_path = path / STATE_FILE
    try:
        state = json.loads(raw[STATE_FILE])
    except ValueError as exc:
        raise CheckpointError(f"checkpoint file {state_path} is unreadable: "
                              f"{first_line(exc)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint file {state_path} does not hold a mapping")
    version = state.get("format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointFormatError(f"checkpoint {path} has an unknown format {version!r} "
                                    f"(this dynaplan reads formats 1 to {FORMAT})")
    if version > FORMAT:
        raise CheckpointFormatError(
            f"checkpoint {path} has format {version}, newer than this dynaplan reads "
            f"({FORMAT}); upgrade dynaplan to load it")
    verified = version >= 2
    if verified:
        for name, expected in _manifest(path, iteration).items():
            if hashlib.sha256(raw[name]).hexdigest() != expected:
                raise CheckpointError(f"checkpoint file {path / name} does not match its "
                                      "manifest (changed or swapped since it was written)")
    elif warn is not None:
        warn(f"checkpoint {path} has no manifest (written by dynaplan before checkpoints "
             "were verified): loaded unverified")
    if state.get("iteration") != iteration:
        raise CheckpointError(f"checkpoint file {state_path} is for iteration "
                              f"{state.get('iteration')!r}, not for its folder {path.name}")
    tensors_path = path / TENSORS_FILE
    try:
        tensors = torch.load(io.BytesIO(raw[TENSORS_FILE]), map_location="cpu",
                             weights_only=True)
    except Exception as exc:  # truncated, corrupted, or pickled objects: all refused
        raise CheckpointError(f"checkpoint file {tensors_path} is unreadable: "
                              f"{first_line(exc)}") from None
    if not isinstance(tensors, dict):
        raise CheckpointError(f"checkpoint file {tensors_path} does not hold a mapping")
    try:
        buffer = ReplayBuffer.load(io.BytesIO(raw[BUFFER_FILE]), name=str(path / BUFFER_FILE))
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    return Checkpoint(path=path, iteration=iteration, state=state, tensors=tensors,
                      buffer=buffer, verified=verified)


def readable_checkpoints(folder: Path, warn: Warn | None = None) -> Iterator[Checkpoint]:
    """The readable checkpoints in `folder`, newest first. Each damaged one is skipped
    with a `warn` line that names the file and what is tried next; when none is left
    that reads, a CheckpointError says so. An unknown format stops the search."""
    newest_first = list_checkpoints(folder)[::-1]
    for k, path in enumerate(newest_first):
        try:
            checkpoint = read_checkpoint(path, warn)
        except CheckpointFormatError:
            raise
        except CheckpointError as exc:
            if k + 1 == len(newest_first):
                raise CheckpointError(f"no usable checkpoint in {folder}: {exc}") from None
            if warn is not None:
                warn(f"{exc}; falling back to the previous checkpoint {newest_first[k + 1]}")
            continue
        yield checkpoint


def load_latest(folder: Path, warn: Warn | None = None) -> Checkpoint | None:
    """The newest readable checkpoint in `folder`, or None when there is none."""
    return next(readable_checkpoints(folder, warn), None)


def load_models(folder: Path, dynamics: nn.Module, reward: nn.Module, warn: Warn | None = None,
                iteration: int | None = None,
                termination: nn.Module | None = None) -> Checkpoint:
    """Load a checkpoint's weights and normalizers into the models, in place, and return
    the checkpoint: the newest one that reads and fits the models (falling back past the
    others), or with `iteration` the one written after that iteration (it must still be
    kept, and fit). `termination`: the run's learned termination model, loaded too."""
    if iteration is not None:
        path = folder / checkpoint_name(iteration)
        if path not in list_checkpoints(folder):
            kept = [int(p.name.split("_")[1]) for p in list_checkpoints(folder)]
            raise ConfigError(
                f"no checkpoint of iteration {iteration} in {folder} (kept: "
                f"{', '.join(map(str, kept)) or 'none'}; train with --keep-checkpoints K "
                f"to keep more)")
        candidates: Iterator[Checkpoint] = iter([read_checkpoint(path, warn)])
    else:
        candidates = readable_checkpoints(folder, warn)
    last: CheckpointError | None = None
    for checkpoint in candidates:
        try:
            load_state(checkpoint, dynamics, reward, termination)
            return checkpoint
        except CheckpointError as exc:
            if iteration is not None:
                raise
            last = exc
            if warn is not None:
                warn(f"{exc}; trying the previous checkpoint")
    if last is not None:
        raise CheckpointError(f"no usable checkpoint in {folder}: {last}")
    raise ConfigError(f"no checkpoint in {folder}")


def load_state(checkpoint: Checkpoint, dynamics: nn.Module, reward: nn.Module,
               termination: nn.Module | None = None) -> None:
    """The checkpoint's dynamics and reward (and learned termination) state_dicts into the
    models (strict: every key and shape must fit), or a one-line CheckpointError."""
    try:
        dynamics.load_state_dict(checkpoint.tensors["dynamics"])
        reward.load_state_dict(checkpoint.tensors["reward"])
        if termination is not None:
            termination.load_state_dict(checkpoint.tensors["termination"]["model"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {checkpoint.path / TENSORS_FILE} does not fit "
                              f"the models: {first_line(exc)}") from None
