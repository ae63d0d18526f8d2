"""Plan calls through an ensemble, fused (the "torch" rollout, accel/fused_ensemble.py)
against the module itself (the "reference" rollout, objective.StepRollout), interleaved
call by call in one process, on Pendulum-v1 shapes with a known reward: the median of
each and their ratio, and the two planners' first actions (the same sampling, so they
must agree).

    python benchmarks/ensemble_fused_ab.py --sequences 500 --horizon 30 --iterations 5 \\
        --hidden 200 --layers 4 --activation silu --particles 20 --calls 6     # setting d
    python benchmarks/ensemble_fused_ab.py --threads 1                        # pets preset
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dynaplan import accel
from dynaplan.agent import MPCAgent
from dynaplan.app import bench_setup
from dynaplan.app.matmul_floor import time_interleaved
from dynaplan.envs import known_reward, make_env
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.objective import ModelObjective
from dynaplan.planners import make_planner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=15)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--elites", type=int, default=10)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--activation", default="relu", choices=["relu", "silu"])
    parser.add_argument("--particles", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    buf = bench_setup.random_data(2000)
    spec = make_env(bench_setup.ENV)[1]
    agents = {}
    for fused in (True, False):
        torch.manual_seed(0)
        ens = GaussianEnsemble(spec.obs_dim + spec.action_dim, spec.obs_dim, args.members,
                               hidden=(args.hidden,) * args.layers, activation=args.activation)
        ens.input_norm.fit(torch.as_tensor(np.concatenate([buf.obs, buf.action], 1)))
        ens.output_norm.fit(torch.as_tensor(buf.next_obs - buf.obs))
        dyn = EnsembleDynamics(ens.eval(), "tsinf", args.particles,
                               generator=torch.Generator().manual_seed(0))
        reward = known_reward(bench_setup.ENV)
        rollout = accel.select_rollout("torch" if fused else "reference", dyn, reward, None)
        objective = ModelObjective(dyn, reward, rollout=rollout)
        planner = make_planner("cem", objective, spec.action_low, spec.action_high,
                               args.horizon, torch.Generator().manual_seed(0),
                               num_sequences=args.sequences, num_iterations=args.iterations,
                               num_elites=args.elites)
        agents["fused" if fused else "module"] = MPCAgent(planner, torch.device("cpu"))
    obs = buf.obs[0]
    print("first actions:", {k: float(a.act(obs)[0]) for k, a in agents.items()})
    times = time_interleaved({k: (lambda a=a: a.act(obs)) for k, a in agents.items()},
                             args.calls)
    fused, module = (1e3 * float(np.median(times[k])) for k in ("fused", "module"))
    print(f"{vars(args)}: fused {fused:.1f} ms, module {module:.1f} ms, "
          f"ratio {fused / module:.3f} (medians of {args.calls})")


if __name__ == "__main__":
    main()
