"""The hardware floor `dynaplan bench` judges against: float32 matmul rates, timed beside
the work they judge.

A rate measured once and compared with timings taken minutes later measures the host's
load as much as the code. On the shared 2-core CPU of this project the square-matmul rate
swung between 112 and 171 GFLOP/s within two minutes (2026-11-26, four rounds of
512..2048 square products). So the bench times a `MatmulProbe` call after every plan call
(or fit), and a floor is the median of the probes taken among the calls it is compared
with: both see the same machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import numpy as np
import torch

MIN_PROBE_GFLOP = 0.2
"""A probe call runs enough products for this much work (about 1.5 ms at 140 GFLOP/s), so
the timer's resolution and the call overhead do not count."""


class MatmulProbe:
    """Calling it runs `inner` float32 products [batch, m, k] @ [batch, k, n] on `device`
    (and waits for them on a GPU); `rate(seconds)` turns the probe calls' wall times into
    GFLOP/s (their median)."""

    def __init__(self, m: int, k: int, n: int, batch: int = 1,
                 device: torch.device | str = "cpu") -> None:
        self.shape = (batch, m, k, n)
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(0)
        self.a = torch.randn(batch, m, k, generator=gen).to(self.device)
        self.b = torch.randn(batch, k, n, generator=gen).to(self.device)
        self.out = torch.empty(batch, m, n, device=self.device)
        one = 2 * batch * m * k * n / 1e9
        self.inner = max(10 if self.device.type == "cuda" else 1,
                         math.ceil(MIN_PROBE_GFLOP / one))
        self.gflop = one * self.inner

    def __call__(self) -> None:
        for _ in range(self.inner):
            torch.bmm(self.a, self.b, out=self.out)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def rate(self, seconds: list[float]) -> float:
        """GFLOP/s from the wall times (s) of probe calls: their median."""
        return self.gflop / float(np.median(seconds))


def square_probe(device: torch.device | str) -> MatmulProbe:
    """The large square product: 2048 on a CPU, 4096 on a GPU."""
    size = 4096 if torch.device(device).type == "cuda" else 2048
    return MatmulProbe(size, size, size, device=device)


def time_interleaved(fns: Mapping[str, Callable[[], object]], rounds: int,
                     into: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Wall seconds of each callable, `rounds` times, taking turns (so all see the same
    machine load); appended to `into` when given."""
    times = into if into is not None else {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times
