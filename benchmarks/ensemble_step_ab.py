"""Issue 21, fitting at the speed limit: one fit of the `pets` preset's ensemble on
Pendulum-v1 data by autograd (the reference FitStep) against the step with its backward
pass written out (accel/ensemble_fit.py, what runs use now), both with the fused Adam,
interleaved, median over repeats; and one step of each, timed alone on a fixed batch.

    python benchmarks/ensemble_step_ab.py [--transitions 1000 2000] [--repeats 5]

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
from dynaplan.models.fitting import reference_step  # noqa: E402


def parts_for(config, fused: bool):
    """`fused`: the written-out step (build's choice); else the reference autograd step."""
    torch.manual_seed(0)
    spec = make_env("Pendulum-v1")[1]
    dynamics, reward = build_models(spec, torch.device("cpu"), config)
    parts = build_fit_parts(config, dynamics, reward)
    for part in parts:
        if part.name == "dynamics" and not fused:
            part.select_step = reference_step
    return parts


def one_fit(config, buf, fused: bool) -> float:
    parts = parts_for(config, fused)
    start = time.perf_counter()
    fit(parts, buf.tensors(), buf.split(0.2, np.random.default_rng(0)), config.model.epochs,
        torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def step_us(config, fused: bool, steps: int = 1000) -> float:
    part = next(p for p in parts_for(config, fused) if p.name == "dynamics")
    model = part.model.train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(model.members, config.model.ensemble.batch_size, 4, generator=g)
    y = torch.randn(model.members, config.model.ensemble.batch_size, 3, generator=g)
    step = part.select_step(model, x[0])
    for _ in range(50):
        step(model, x, y)
    start = time.perf_counter()
    for _ in range(steps):
        step(model, x, y)
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
    print(f"gradient step alone (no optimizer): autograd {before:.1f} us, written out "
          f"{now:.1f} us: {before / now:.2f}x")
    for n in args.transitions:
        buf = random_data(n)
        times: dict[bool, list[float]] = {True: [], False: []}
        one_fit(config, buf, True)  # warm up
        for _ in range(args.repeats):
            for fused in (False, True):
                times[fused].append(one_fit(config, buf, fused))
        before, now = (statistics.median(times[k]) for k in (False, True))
        print(f"{n} transitions: fit by autograd {before:.3f} s, written out "
              f"{now:.3f} s (median of {args.repeats}): {before / now:.2f}x")


if __name__ == "__main__":
    main()
