"""Issue 21, no wasted work: one fit of the `pets` preset's models on Pendulum-v1 data with
the reward model left unfitted (what a run under the known reward does now) against the
same fit training it too (what it did before), interleaved, median over repeats.

    python benchmarks/unused_reward_fit_ab.py [--transitions 1000 2000] [--repeats 5]

One torch thread (OMP_NUM_THREADS=1 is set before torch loads). Both fits draw the same
batches (models/fitting.py), so the dynamics weights come out identical; only the time
differs.
"""

from __future__ import annotations

import argparse
import copy
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


def one_fit(config, buf, fit_reward: bool) -> float:
    torch.manual_seed(0)
    spec = make_env("Pendulum-v1")[1]
    dynamics, reward = build_models(spec, torch.device("cpu"), config)
    parts = build_fit_parts(config, dynamics, reward)
    for part in parts:
        if part.name == "reward":
            part.fitted = fit_reward
    start = time.perf_counter()
    fit(parts, buf.tensors(), buf.split(0.2, np.random.default_rng(0)), config.model.epochs,
        torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = config_from_args(build_parser().parse_args(
        ["train", "--env", "Pendulum-v1", "--preset", "pets", "--quiet"]))
    print(f"pets preset on Pendulum-v1: {config.model.epochs} epochs, ensemble batch "
          f"{config.model.ensemble.batch_size}, reward model batch {config.model.batch_size}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for n in args.transitions:
        buf = random_data(n)
        times: dict[bool, list[float]] = {True: [], False: []}
        one_fit(copy.deepcopy(config), buf, False)  # warm up
        for _ in range(args.repeats):
            for fit_reward in (True, False):
                times[fit_reward].append(one_fit(config, buf, fit_reward))
        before, now = (statistics.median(times[k]) for k in (True, False))
        print(f"{n} transitions: fit with the reward model {before:.3f} s, without "
              f"{now:.3f} s (median of {args.repeats}): {before / now:.2f}x")


if __name__ == "__main__":
    main()
