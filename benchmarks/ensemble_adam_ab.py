"""Issue 21, fitting at the speed limit: one fit of the `pets` preset's ensemble on
Pendulum-v1 data with torch.optim.Adam's default CPU implementation (a loop of about ten
elementwise ops per parameter tensor: what the ensemble used before) against the fused
kernel through accel.select_optimizer (what it uses now), interleaved, median over
repeats; and the optimizer's own step, timed alone.

    python benchmarks/ensemble_adam_ab.py [--transitions 1000 2000] [--repeats 5]

One torch thread (OMP_NUM_THREADS=1 is set before torch loads). The reward model is not
fitted (the preset plans with Pendulum's known reward).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dynaplan.app.bench_setup import random_data  # noqa: E402
from dynaplan.app.cli import build_parser  # noqa: E402
from dynaplan.app.flags import config_from_args  # noqa: E402
from dynaplan.build import build_fit_parts, build_models  # noqa: E402
from dynaplan.envs import make_env  # noqa: E402
from dynaplan.models import fit  # noqa: E402


def parts_for(config, fused: bool):
    torch.manual_seed(0)
    spec = make_env("Pendulum-v1")[1]
    dynamics, reward = build_models(spec, torch.device("cpu"), config)
    parts = build_fit_parts(config, dynamics, reward)
    for part in parts:
        if part.name == "dynamics" and not fused:
            part.optimizer = torch.optim.Adam(dynamics.parameters(), lr=config.model.ensemble.lr,
                                              weight_decay=5e-5)
    return parts


def one_fit(config, buf, fused: bool) -> float:
    parts = parts_for(config, fused)
    start = time.perf_counter()
    fit(parts, buf.tensors(), buf.split(0.2, np.random.default_rng(0)), config.model.epochs,
        torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def step_us(config, fused: bool, steps: int = 2000) -> float:
    part = next(p for p in parts_for(config, fused) if p.name == "dynamics")
    for p in part.model.parameters():
        p.grad = torch.randn_like(p)
    for _ in range(50):
        part.optimizer.step()
    start = time.perf_counter()
    for _ in range(steps):
        part.optimizer.step()
    return (time.perf_counter() - start) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = config_from_args(build_parser().parse_args(
        ["train", "--env", "Pendulum-v1", "--preset", "pets", "--quiet"]))
    print(f"pets preset on Pendulum-v1: {config.model.epochs} epochs, ensemble batch "
          f"{config.model.ensemble.batch_size}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    steps: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeats):
        for fused in (False, True):
            steps[fused].append(step_us(config, fused))
    before, now = (statistics.median(steps[k]) for k in (False, True))
    print(f"optimizer step alone: default Adam {before:.1f} us, fused {now:.1f} us: "
          f"{before / now:.2f}x")
    for n in args.transitions:
        buf = random_data(n)
        times: dict[bool, list[float]] = {True: [], False: []}
        one_fit(config, buf, True)  # warm up
        for _ in range(args.repeats):
            for fused in (False, True):
                times[fused].append(one_fit(config, buf, fused))
        before, now = (statistics.median(times[k]) for k in (False, True))
        print(f"{n} transitions: fit with the default Adam {before:.3f} s, fused "
              f"{now:.3f} s (median of {args.repeats}): {before / now:.2f}x")


if __name__ == "__main__":
    main()
