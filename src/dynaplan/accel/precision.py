"""TF32: float32 matmuls on a GPU's tensor cores, for planning rollouts that opt in.

On Ampere and later GPUs cuBLAS can multiply float32 matrices through TF32 tensor cores:
inputs rounded to a 10-bit mantissa, products accumulated in float32, so a layer's output
is off by about 1e-3 relative. A planner ranks thousands of sampled action sequences by
predicted return, which that rounding hardly moves, and the PETS-sized ensemble planner
of `dynaplan bench` (setting d) ran 1.4x faster with it on an H200 (BENCHMARKS.md).
Fitting keeps full float32. The switch has no effect on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def tf32_matmuls(on: bool = True) -> Iterator[None]:
    """cuBLAS float32 matmuls on TF32 tensor cores (`on`) or in full float32 inside the
    block; the process's setting is restored on leaving it."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
