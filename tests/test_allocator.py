"""Freed tensor memory stays in the process: a fit's per-batch tensors cost no page faults
(allocator.py)."""

import subprocess
import sys
from types import SimpleNamespace

import pytest

from dynaplan.accel.allocator import keep_freed_memory

# five 4 MB tensors made and freed, 20 times after 6 rounds of warm-up: the page faults of
# those 20 rounds, and the free bytes the heap keeps after them (glibc's mallinfo2). With
# glibc's defaults here: 0 or 81,280 faults (it trims the heap in some runs and not in
# others) and under 20 MB kept.
FAULTS = """
import ctypes, resource, sys, torch
from dynaplan.accel.allocator import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "set" else "-")
def made_and_freed():
    tensors = [torch.ones(1024, 1024) for _ in range(5)]
    del tensors
for _ in range(6):
    made_and_freed()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    made_and_freed()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
print(libc.mallinfo2().fordblks)
"""


def page_faults(mode: str) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_tensors_are_reused_without_page_faults():
    done, faults, kept = page_faults("set")
    assert done == "True" and faults < 256 and kept >= 20 << 20


def test_the_users_own_malloc_settings_are_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert keep_freed_memory() is False


def test_glibc_gets_fixed_thresholds(monkeypatch):
    calls = []

    def mallopt(option, value):  # a function: ctypes' argtypes can be set on it
        calls.append((option, value))
        return 1

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr("ctypes.CDLL", lambda name: SimpleNamespace(mallopt=mallopt))
    assert keep_freed_memory() is True
    assert calls == [(-3, 32 << 20), (-1, 256 << 20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
