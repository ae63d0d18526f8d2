"""What the A/B benchmarks of one fit of the `pets` preset's models on Pendulum-v1 share
(ensemble_adam_ab.py, ensemble_step_ab.py, unused_reward_fit_ab.py): the preset's
configuration, its fit parts built afresh from torch seed 0 with one change applied, one
timed fit on the same split and batches, and the median of each variant measured
interleaved. Importing it sets OMP_NUM_THREADS=1 before torch loads (one torch thread),
unless the caller set it."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dynaplan.app.bench_setup import random_data  # noqa: E402
from dynaplan.app.cli import build_parser  # noqa: E402
from dynaplan.app.flags import config_from_args  # noqa: E402
from dynaplan.build import build_fit_parts, build_models  # noqa: E402
from dynaplan.envs import make_env  # noqa: E402
from dynaplan.models import FitPart, fit  # noqa: E402


def pets_config() -> Any:
    """`dynaplan train --env Pendulum-v1 --preset pets`'s configuration."""
    return config_from_args(build_parser().parse_args(
        ["train", "--env", "Pendulum-v1", "--preset", "pets", "--quiet"]))


def pets_parts(config: Any, change: Callable[[FitPart], None] | None = None) -> list[FitPart]:
    """The run's fit parts of fresh models (torch seed 0), `change` applied to each."""
    torch.manual_seed(0)
    spec = make_env("Pendulum-v1")[1]
    dynamics, reward = build_models(spec, torch.device("cpu"), config)
    parts = build_fit_parts(config, dynamics, reward)
    for part in parts:
        if change is not None:
            change(part)
    return parts


def timed_fit(config: Any, buf: Any, parts: list[FitPart]) -> float:
    """Seconds of one fit of `parts` on `buf` (the same split and batches every time)."""
    start = time.perf_counter()
    fit(parts, buf.tensors(), buf.split(0.2, np.random.default_rng(0)), config.model.epochs,
        torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def interleaved(measure: Callable[[Any], float], variants: Sequence[Any],
                repeats: int) -> list[float]:
    """The median of `measure(variant)` per variant, the variants measured in turn
    `repeats` times."""
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(repeats):
        for k, variant in enumerate(variants):
            times[k].append(measure(variant))
    return [statistics.median(t) for t in times]


def fit_medians(config: Any, transitions: int, parts_for: Callable[[Any, Any], list[FitPart]],
                variants: Sequence[Any], repeats: int) -> list[float]:
    """The median seconds of one fit per variant of `parts_for(config, variant)` on
    `transitions` random Pendulum-v1 transitions, after one warm-up fit of the last
    variant, the variants interleaved."""
    buf = random_data(transitions)
    timed_fit(config, buf, parts_for(config, variants[-1]))  # warm up
    return interleaved(lambda variant: timed_fit(config, buf, parts_for(config, variant)),
                       variants, repeats)
