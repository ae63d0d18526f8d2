"""Writing into a folder dynaplan owns (a run, a sweep, a report, a comparison) without
ever writing anywhere else.

Every file the project writes or rewrites in such a folder goes through `atomic_write`
(or `atomic_path` for writers that want a file name): the path is checked first, so that
no part of it below the folder is a symbolic link and it resolves inside the folder, and
the bytes go to a fresh temporary file beside it (created exclusively, never following a
link) that is fsynced and renamed over the target. A rename replaces a name, never the
file a link points to, and a reader sees the old file or the new one, never half of one.
A refusal or a failed write (a full disk, a read-only folder) is a one-line
`OutputError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from dynaplan.errors import ConfigError


class OutputError(ConfigError):
    """A file that may not or could not be written (one line: which, and why)."""


def checked(root: Path, path: Path) -> Path:
    """`path`, which must lie under `root`, once no part of it below `root` is a symbolic
    link and it resolves inside `root` (the root itself may be a link the user chose)."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise OutputError(f"refusing to write {path}: it is not inside {root}") from None
    current = root
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            raise OutputError(f"refusing to write {path}: {current} is a symbolic link (the "
                              "files of a run folder must be its own)")
    try:
        resolved_root = root.resolve()
        resolved = path.resolve()
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise OutputError(f"refusing to write {path}: it resolves outside {root}")
    return path


def make_dirs(root: Path, path: Path) -> Path:
    """Create folder `path` under `root` (and its parents), each checked first."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        current = root
        for part in checked(root, path).relative_to(root).parts:
            current = checked(root, current / part)
            current.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {path}: {exc.strerror or exc}") from None
    return path


_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)


def _temporary(path: Path, root: Path | None, suffix: str) -> Path:
    root = path.parent if root is None else root
    make_dirs(root, checked(root, path).parent)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def _finish(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any],
                 root: Path | None = None) -> None:
    """Call `write(binary file)` on a fresh temporary file beside `path` (created
    exclusively, never through a link), fsync it and rename it over `path`. `root`: the
    folder the file must stay inside (default: its own folder)."""
    tmp = _temporary(path, root, "")
    try:
        with os.fdopen(os.open(tmp, _FLAGS, 0o666), "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _finish(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        _remove(tmp)


@contextlib.contextmanager
def atomic_path(path: Path, root: Path | None = None, suffix: str = "") -> Iterator[Path]:
    """For a writer that wants a file name (ffmpeg): a fresh temporary file beside `path`,
    created exclusively and handed over by name, renamed over `path` when the block ends
    and removed if it fails. `suffix`: the temporary name's ending (the writer may pick
    the format by it)."""
    tmp = _temporary(path, root, suffix)
    try:
        os.close(os.open(tmp, _FLAGS, 0o666))
        yield tmp
        _fsync_file(tmp)
        _finish(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        _remove(tmp)


def write_text(path: Path, text: str, root: Path | None = None) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()), root)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
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
