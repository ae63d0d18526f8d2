"""Keep freed tensor memory in the process instead of handing it back to the OS (glibc).

glibc serves an allocation above its mmap threshold (128 kB at first, raised on the fly
up to 32 MB as such blocks are freed) with a fresh mapping, and returns freed memory at
the heap's top once more than twice that threshold is free. A model fit allocates and
frees [2000, 512] float32 activations and gradients (4 MB each) every batch, and whenever
one of those comes from a fresh mapping, the kernel faults it in page by page: 10,000 to
31,000 page faults an epoch in the bench's fitting setting. With a fixed 32 MB threshold
and a 256 MB trim threshold, freed blocks stay in the heap and are reused (0 to 335 faults
an epoch), and the process keeps its peak footprint instead. The time it saves varies from
run to run: epochs took 0.27-0.45 s with glibc's defaults and 0.27-0.33 s with these
settings in 13 process pairs (`benchmarks/malloc_fit_ab.py`, benchmarks/SPEED_HISTORY.md section 2).

`dynaplan`'s command line sets this once at start; a library user may call
`keep_freed_memory()` too. It changes nothing where the allocator is not glibc, or where
the user set glibc's own MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Set glibc's fixed mmap and trim thresholds; True when they were set."""
    if not sys.platform.startswith("linux"):
        return False
    if {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False  # the user's own choice
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
