"""Build and load the native CPU kernels on first use: the rollout kernel
(accel/native_kernel.c) and the fitting kernels (accel/native_fit.c), one library.

The C files ship with the package and are compiled here, once per machine, by the system C
compiler (`$CC`, else `cc` or `gcc`) with `-O3 -march=native -fopenmp`: tuned for this CPU,
so it is built where it runs rather than shipped as a binary. The shared library is cached
under `$DYNAPLAN_CACHE` (default `$XDG_CACHE_HOME/dynaplan`, else `~/.cache/dynaplan`),
named by a hash of the source, the compiler command and this CPU's model and flags: a new
source, compiler or machine builds a new library, and concurrent builds cannot clobber one
another (each writes a temporary file and renames it into place).

The library is loaded after torch, so its dependency on libgomp.so.1 resolves to the
OpenMP runtime torch already loaded: the kernel's threads are torch's threads.

Where it cannot be built on a machine it could run on (no compiler, a compile error, a
cache that cannot be written), a process says so once, as a logged warning with the
reason: everything still runs, on the torch path, only slower. A platform or CPU it does
not support is no surprise, so it is only logged at debug level.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCES = tuple(Path(__file__).with_name(name) for name in ("native_kernel.c", "native_fit.c"))
HEADERS = (Path(__file__).with_name("native_gemm.h"),)
WHAT = "the native rollout kernel"  # in refusals
FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC"]
LIBS = ["-lm"]
_log = logging.getLogger(__name__)


def _cpu() -> str:
    """This CPU's model name and feature flags (Linux), or '' where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
    return "\n".join(dict.fromkeys(lines))  # the first core's lines, once


def unavailable() -> str | None:
    """Why the kernel cannot run here (a one-line reason), or None when it can: it is built
    (or found in the cache) to find out, once a process."""
    try:
        library()
    except RuntimeError as err:
        return str(err)
    return None


def _unsupported() -> str | None:
    """What rules the kernel out on this machine whatever is installed: the platform, the
    CPU."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"{WHAT} needs Linux on an x86-64 CPU"
    flags = _cpu().split()
    if flags and not {"avx2", "fma"} <= set(flags):
        return f"{WHAT} needs a CPU with AVX2 and FMA"
    return None


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    return shutil.which(cc) if cc else (shutil.which("cc") or shutil.which("gcc"))


def cache_dir() -> Path:
    root = os.environ.get("DYNAPLAN_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dynaplan"


_loaded: list[ctypes.CDLL | str] = []
"""The library once loaded, or the reason it could not be: a process tries once (a failing
compiler is not rerun at every check)."""


def reset() -> None:
    """Forget what was loaded or refused (the next call of `library` tries again)."""
    _loaded.clear()


def library() -> ctypes.CDLL:
    """The compiled kernel (built on the first call of a process); RuntimeError with a
    one-line reason when it cannot be built or loaded."""
    if not _loaded:
        try:
            _loaded.append(_load())
        except _Unsupported as err:
            _log.debug("%s", err)
            _loaded.append(str(err))
        except RuntimeError as err:
            _log.warning("%s; the CPU kernel is off in this process, so the automatic "
                         "choice plans and fits through torch ops (slower)", err)
            _loaded.append(str(err))
    lib = _loaded[0]
    if isinstance(lib, str):
        raise RuntimeError(lib)
    return lib


class _Unsupported(RuntimeError):
    """This platform or CPU is not one the kernel is for."""


def _load() -> ctypes.CDLL:
    reason = _unsupported()
    if reason is not None:
        raise _Unsupported(reason)
    cc = _compiler()
    if cc is None:
        raise RuntimeError(f"{WHAT} needs a C compiler (cc or gcc, or $CC)")
    import torch  # noqa: F401  (loads torch's libgomp first, for the library to share)

    try:
        lib = ctypes.CDLL(str(_build(cc)))
    except OSError as err:  # an unwritable cache, a library that does not load
        raise RuntimeError(f"{WHAT} could not be built or loaded: {err}") from None
    long, ptr = ctypes.c_long, ctypes.c_void_p
    lib.dp_rollout.restype = ctypes.c_int
    lib.dp_rollout.argtypes = [long] * 4 + [ptr] * 5 + [long, ptr, ptr, ptr] + [long] * 3
    lib.dp_fit_input_block.restype = None
    lib.dp_fit_input_block.argtypes = [long] * 3 + [ptr] * 5 + [ctypes.c_double] + [ptr] * 10 + [
        long]
    lib.dp_fit_linear.restype = None
    lib.dp_fit_linear.argtypes = [long] * 3 + [ptr] * 8 + [long]
    lib.dp_fit_bn_relu_head.restype = ctypes.c_double
    lib.dp_fit_bn_relu_head.argtypes = [long] * 3 + [ptr] * 5 + [ctypes.c_double] + [ptr] * 8 + [
        long]
    lib.dp_fit_bn_relu_head_backward.restype = None
    lib.dp_fit_bn_relu_head_backward.argtypes = [long] * 3 + [ptr] * 13 + [long]
    lib.dp_fit_input_block_backward.restype = None
    lib.dp_fit_input_block_backward.argtypes = [long] * 3 + [ptr] * 4 + [long] + [ptr] * 8 + [
        long]
    lib.dp_fit_running_stats.restype = None
    lib.dp_fit_running_stats.argtypes = [long] * 2 + [ptr] * 2 + [ctypes.c_double] + [ptr] * 3
    lib.dp_fit_seed_mse_work.restype = long
    lib.dp_fit_seed_mse_work.argtypes = [long] * 6
    lib.dp_fit_seed_mse.restype = ctypes.c_double
    lib.dp_fit_seed_mse.argtypes = [long] * 5 + [ptr] * 8 + [ctypes.c_double] * 4 + [long]
    return lib


def _build(cc: str) -> Path:
    """The library for these sources, compiler and CPU: from the cache, or built into it."""
    sources = [path.read_bytes() for path in SOURCES + HEADERS]
    key = hashlib.sha256(b"\0".join([*sources, cc.encode(), " ".join(FLAGS + LIBS).encode(),
                                     _cpu().encode()])).hexdigest()[:16]
    path = cache_dir() / f"native_kernel_{key}.so"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
        os.close(fd)
        try:
            done = subprocess.run([cc, *FLAGS, "-o", tmp, *map(str, SOURCES), *LIBS],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                first = (done.stderr.strip().splitlines() or ["no output"])[0]
                raise RuntimeError(f"building {WHAT} failed: {first}")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path
