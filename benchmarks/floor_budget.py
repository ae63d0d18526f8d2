"""Where the time above the matmul floor goes: `dynaplan bench`'s settings a, b, c and its
fitting figure, each broken down by torch.profiler into op groups, every group's time
given as a multiple of the matmul floor measured beside it: the 2048 square probe's rate
(matmul_floor.square_probe), which was the larger of the bench's two rates in every run.

    python benchmarks/floor_budget.py [--calls 40] [--fit-epochs 2] [--json FILE]
        [--settings a_seed_cem b_seed_random c_pets_sized d_pets_paper fit]

A group's share says what ratio to the floor is left even if everything else were free:
e.g. activations 0.30 means the activations alone put the ratio at >= 1.30 once the
matmuls run at the floor. "outside ops" is the profiled calls' wall time that no op
accounts for (Python between the ops). The profiled calls are judged against a floor
timed between them, the whole-call ratio (timed without the profiler) against one timed
between its own calls; the profiler adds about a microsecond to every op.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from dynaplan.agent import MPCAgent
from dynaplan.app import bench_setup
from dynaplan.app.matmul_floor import square_probe, time_interleaved
from dynaplan.build import build_fit_parts
from dynaplan.config import TrainConfig
from dynaplan.models import fit

GROUPS = {
    "matmul": ("aten::baddbmm", "aten::bmm", "aten::addmm", "aten::addmm_", "aten::mm",
               "aten::addmv_", "aten::addmv", "aten::mv"),
    "activation": ("aten::relu_", "aten::relu", "aten::clamp_min_", "aten::clamp_min",
                   "aten::silu_", "aten::silu", "aten::threshold_backward",
                   "aten::silu_backward"),
    "batchnorm": ("aten::native_batch_norm", "aten::native_batch_norm_backward",
                  "aten::_batch_norm_impl_index", "aten::batch_norm"),
    "optimizer": ("aten::_fused_adam_",),
}


def group_of(name: str) -> str:
    for group, names in GROUPS.items():
        if name in names:
            return group
    return "other"


def profiled(fn, repeats: int, probe) -> tuple[dict[str, float], float, float]:
    """Self CPU seconds per call of `fn` by op group (ops nested in a group's op are
    counted in that op's self time, not twice), the median wall seconds of those
    profiled calls, and the probe's GFLOP/s timed between them (outside the profiler)."""
    seconds: dict[str, float] = defaultdict(float)
    walls, probes = [], []
    for _ in range(repeats):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - start)
        for event in prof.key_averages():
            seconds[group_of(event.key)] += event.self_cpu_time_total / 1e6 / repeats
        start = time.perf_counter()
        probe()
        probes.append(time.perf_counter() - start)
    return dict(seconds), float(np.median(walls)), probe.rate(probes)


def timed(fn, repeats: int, probe) -> tuple[float, float]:
    """Median seconds of `fn` and GFLOP/s of `probe`, interleaved call by call."""
    times = time_interleaved({"call": fn, "probe": probe}, repeats)
    return float(np.median(times["call"])), probe.rate(times["probe"])


def budget(name: str, fn, gflop: float, repeats: int, probe) -> dict:
    for _ in range(3):
        fn()
    seconds, rate = timed(fn, repeats, probe)
    floor = gflop / rate
    groups, wall, profiled_rate = profiled(fn, max(repeats // 4, 2), probe)
    # the profiled calls against the floor timed beside them (the host's speed drifts)
    profiled_floor = gflop / profiled_rate
    shares = {g: t / profiled_floor for g, t in sorted(groups.items(), key=lambda kv: -kv[1])}
    shares["outside ops"] = wall / profiled_floor - sum(shares.values())
    row = {"name": name, "s": seconds, "floor_s": floor, "ratio_to_floor": seconds / floor,
           "square_gflops": rate, "profiled_wall_ratio": wall / profiled_floor,
           "profiled_square_gflops": profiled_rate, "groups": shares}
    parts = ", ".join(f"{g} {v:.2f}" for g, v in shares.items())
    print(f"{name}: {1e3 * seconds:.2f} ms, floor {1e3 * floor:.2f} ms "
          f"({rate:.0f} GFLOP/s), ratio {row['ratio_to_floor']:.2f}; profiled calls "
          f"{row['profiled_wall_ratio']:.2f} x their floor ({profiled_rate:.0f} GFLOP/s): "
          f"{parts}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--fit-epochs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--settings", nargs="+", default=[*bench_setup.CPU_SETTINGS, "fit"])
    args = parser.parse_args()
    device = torch.device("cpu")
    probe = square_probe(device)
    buf = bench_setup.random_data(2000)
    rows = []
    for setting in bench_setup.SETTINGS:
        if setting.name not in args.settings:
            continue
        dyn, rew, planned = bench_setup.setting_models(setting, buf, device)
        gflop = (bench_setup.ensemble_gflop(setting, planned)[0] if setting.members
                 else bench_setup.plan_gflop(setting, dyn, rew))
        planner = bench_setup.build(setting, planned, rew, device, compile=False)
        agent = MPCAgent(planner, device)
        rows.append(budget(setting.name, lambda agent=agent: agent.act(buf.obs[0]), gflop,
                           args.calls, probe))
    if "fit" not in args.settings:
        return write(args.json, rows)
    data = bench_setup.random_data(20_000)
    dyn, rew = bench_setup.fitted_models(data, bench_setup.SEED_NET)
    parts = build_fit_parts(TrainConfig(), dyn, rew)  # lr 3e-4, batch 2000, noise 0.001
    split = data.split(0.2, np.random.default_rng(0))
    gen = torch.Generator().manual_seed(0)
    gflop = args.fit_epochs * bench_setup.fit_gflop_per_epoch(
        len(split.train), len(split.valid), args.fit_epochs,
        bench_setup.flops_per_row(dyn, rew))
    rows.append(budget(f"fit ({args.fit_epochs} epochs)",
                       lambda: fit(parts, data.tensors(), split, args.fit_epochs, gen),
                       gflop, 5, probe))
    write(args.json, rows)


def write(path: Path | None, rows: list[dict]) -> None:
    if path is not None:
        path.write_text(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                    "torch": torch.__version__,
                                    "threads": torch.get_num_threads(),
                                    "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
