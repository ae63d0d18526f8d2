"""The Triton rollout kernel against the torch path, on a GPU: plan calls of `dynaplan
bench` settings a, c and d, interleaved call by call, through CUDA graphs.

For each setting and precision (float32, and TF32 with --tf32) it times the torch path
(cuBLAS, FusedMLPs) and the kernel under each tile configuration (block, block_m,
num_warps), all on the same models, and checks first that each kernel configuration's
predicted returns for one batch of candidate sequences match the torch path's.

    python benchmarks/triton_rollout_ab.py [--calls 200] [--tf32] [--json FILE]
    python benchmarks/triton_rollout_ab.py --tiny     # a smoke run of this script: a CPU,
                                                      # Triton's interpreter, tiny settings
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

CONFIGS = ((32, 16, 4), (64, 16, 4), (32, 16, 8), (64, 16, 8), (32, 32, 4), (128, 16, 8))
"""(block, block_m, num_warps) tried on the GPU."""


def fresh(dynamics):
    """What one path plans through: an ensemble gets a generator of its own (each CUDA
    graph registers its own), seeded alike, so every path draws the same particles."""
    from dynaplan.models.propagation import EnsembleDynamics

    if not isinstance(dynamics, EnsembleDynamics):
        return dynamics
    gen = torch.Generator(device=dynamics.generator.device).manual_seed(0)
    return EnsembleDynamics(dynamics.ensemble, dynamics.propagation, dynamics.particles,
                            dynamics.sample, gen)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--settings", nargs="+", default=["a_seed_cem", "c_pets_sized",
                                                     "d_pets_paper"])
    p.add_argument("--tf32", action="store_true", help="also time both paths in TF32")
    p.add_argument("--configs", type=int, default=len(CONFIGS),
                   help="the first N tile configurations of CONFIGS")
    p.add_argument("--tiny", action="store_true",
                   help="check the script on a CPU: interpreter, 16 sequences, horizon 2")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    if args.tiny:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is first imported

    import numpy as np

    from dynaplan import accel
    from dynaplan.agent import MPCAgent
    from dynaplan.app import bench_setup
    from dynaplan.app.matmul_floor import time_interleaved
    from dynaplan.envs import known_reward
    from dynaplan.objective import ModelObjective

    def objective(dynamics, reward, kernel: str, tf32: bool, **kernel_options):
        """A ModelObjective whose rollouts run as `kernel` (accel.select_rollout)."""
        rollout = accel.select_rollout(kernel, dynamics, reward, None, tf32=tf32,
                                       **kernel_options)
        return ModelObjective(dynamics, reward, rollout=rollout)

    device = torch.device("cpu" if args.tiny else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        print("needs a CUDA GPU (or --tiny for a CPU smoke run)", file=sys.stderr)
        return 2
    calls, warmup = (2, 1) if args.tiny else (args.calls, args.warmup)
    buf = bench_setup.random_data(2000)
    results = []
    for name in args.settings:
        setting = bench_setup.setting_named(name)
        if args.tiny:
            setting = dataclasses.replace(setting, num_sequences=16, horizon=2, iterations=1,
                                          elites=4, particles=min(setting.particles, 5))
        _, rew, dyn = bench_setup.setting_models(setting, buf, device)  # d: a TS-inf ensemble
        reward = rew if setting.learned_reward else known_reward(bench_setup.ENV)
        draws = torch.Generator().manual_seed(1)
        actions = (torch.rand(1, setting.num_sequences, setting.horizon, 1, generator=draws)
                   * 4 - 2).to(device)
        obs = torch.as_tensor(buf.obs[:1], device=device)
        for tf32 in (False, True) if args.tf32 else (False,):
            paths: dict[str, tuple[str, dict]] = {"torch": ("torch", {})}
            for block, block_m, warps in CONFIGS[:args.configs]:
                paths[f"triton b{block} m{block_m} w{warps}"] = (
                    "triton", dict(block=block, block_m=block_m, num_warps=warps))
            want = objective(fresh(dyn), reward, "torch", tf32)(obs, actions)
            agents, err = {}, {}
            for key, (kernel, options) in paths.items():
                got = objective(fresh(dyn), reward, kernel, tf32, **options)(obs, actions)
                err[key] = float((got - want).abs().max())
                planner = bench_setup.setting_planner(
                    setting, objective(fresh(dyn), reward, kernel, tf32, **options), device,
                    cuda_graph=device.type == "cuda")
                agent = MPCAgent(planner, device)
                agents[key] = lambda agent=agent: agent.act(buf.obs[0])
            time_interleaved(agents, warmup)
            times = time_interleaved(agents, calls)
            base = float(np.median(times["torch"]))
            for key, t in times.items():
                row = {"setting": setting.name, "tf32": tf32, "path": key,
                       "ms_p50": 1e3 * float(np.median(t)),
                       "ms_p99": 1e3 * float(np.percentile(t, 99)),
                       "ratio_to_torch": float(np.median(t)) / base,
                       "max_abs_return_diff": err[key]}
                results.append(row)
                print(f"{row['setting']:14s} {'tf32' if tf32 else 'fp32'} {key:24s} "
                      f"{row['ms_p50']:8.3f} ms p50 {row['ms_p99']:8.3f} p99  "
                      f"x{row['ratio_to_torch']:.3f}  |dR| {err[key]:.2e}", flush=True)
    print("fastest path per setting and precision:")
    for key in dict.fromkeys((r["setting"], r["tf32"]) for r in results):
        rows = [r for r in results if (r["setting"], r["tf32"]) == key]
        best = min(rows, key=lambda r: r["ms_p50"])
        print(f"  {key[0]:14s} {'tf32' if key[1] else 'fp32'}: {best['path']}, "
              f"{best['ms_p50']:.3f} ms p50, x{best['ratio_to_torch']:.3f} of the torch path")
    if args.json:
        name = "cpu (interpreter)" if args.tiny else torch.cuda.get_device_name()
        Path(args.json).write_text(json.dumps(
            {"device": name, "torch": torch.__version__, "calls": calls, "cuda_graph":
             device.type == "cuda", "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
