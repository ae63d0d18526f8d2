"""The native rollout kernel against the torch path through a TS-inf ensemble: bench
setting d (500 sequences x 20 particles, 5 members of 4 x 200 SiLU, horizon 30), one
objective call (one CEM iteration) each, interleaved, medians.

    python benchmarks/native_ensemble_ab.py [--calls 10]
"""

import argparse
import statistics
import time

import torch

from dynaplan import accel
from dynaplan.accel.allocator import keep_freed_memory
from dynaplan.app import bench_setup
from dynaplan.objective import ModelObjective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    keep_freed_memory()
    buf = bench_setup.random_data(2000)
    setting = bench_setup.setting_named("d_pets_paper")
    obs = torch.as_tensor(buf.obs[:1]).float()
    actions = torch.rand(1, setting.num_sequences, setting.horizon, 1,
                         generator=torch.Generator().manual_seed(0)) * 4 - 2
    objectives = {}
    for kernel in ("torch", "native"):  # each with its own generator, seeded alike
        dynamics = bench_setup.ensemble_dynamics(setting, buf, torch.device("cpu"))
        reward = bench_setup.known_reward(bench_setup.ENV)
        rollout = accel.select_rollout(kernel, dynamics, reward, None)
        objectives[kernel] = ModelObjective(dynamics, reward, rollout=rollout)
    values = {k: o(obs, actions) for k, o in objectives.items()}
    print(f"largest difference of the returns: "
          f"{(values['torch'] - values['native']).abs().max().item():.2e}")
    times: dict[str, list[float]] = {k: [] for k in objectives}
    for i in range(args.calls):
        for kernel in ("torch", "native") if i % 2 else ("native", "torch"):
            start = time.perf_counter()
            objectives[kernel](obs, actions)
            times[kernel].append(time.perf_counter() - start)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    print(f"torch {ms['torch']:.1f} ms, native {ms['native']:.1f} ms per objective call "
          f"({torch.get_num_threads()} threads): {ms['torch'] / ms['native']:.2f}x")


if __name__ == "__main__":
    main()
