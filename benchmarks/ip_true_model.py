"""InvertedPendulum-v5 planned through the TRUE simulator: is a failure the model's or the
objective's?

Every candidate sequence is rolled out in a second MuJoCo copy of the environment, set to
the observed state, and scored with the planning reward; the agent acts in the real one.
No learning is involved, so what fails here fails for the objective and the horizon.

    python benchmarks/ip_true_model.py --horizon 10 --planner cem --return-mean
    python benchmarks/ip_true_model.py --horizon 30 --planner mppi --reward shaped

Prints the return (steps survived, at most --steps) and the last observation
[x, theta, x_dot, theta_dot]: |x| near 1 means the cart ran into the end of its rail.
Slow by design (one Python loop over candidates): about 30-300 s for 300 steps.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

from dynaplan.agent import MPCAgent
from dynaplan.envs import known_termination, resolve_reward
from dynaplan.planners import make_planner

ENV = "InvertedPendulum-v5"


def simulator_objective(reward_fn):
    sim = gym.make(ENV).unwrapped
    sim.reset(seed=0)
    nq = sim.model.nq
    termination = known_termination(ENV)

    def objective(obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        B, N, H, _ = actions.shape
        out = torch.zeros(B, N)
        for b in range(B):
            for n in range(N):
                sim.set_state(obs[b, :nq].double().numpy(), obs[b, nq:].double().numpy())
                total, alive = 0.0, True
                for t in range(H):
                    s = torch.as_tensor(sim._get_obs(), dtype=torch.float32)
                    sim.do_simulation(actions[b, n, t].numpy(), sim.frame_skip)
                    s2 = torch.as_tensor(sim._get_obs(), dtype=torch.float32)
                    if alive:
                        total += float(reward_fn(s, actions[b, n, t], s2))
                    alive = alive and not bool(termination(s, actions[b, n, t], s2))
                out[b, n] = total
        return out

    return objective


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--horizon", type=int, default=10)
    p.add_argument("--planner", choices=["cem", "mppi"], default="cem")
    p.add_argument("--return-mean", action="store_true", help="cem: act on the final mean")
    p.add_argument("--reward", choices=["known", "shaped"], default="known")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=1, help="reset seed of the real environment")
    args = p.parse_args()
    options: dict = {"num_sequences": 100, "num_iterations": 3}
    if args.planner == "cem":
        options.update(num_elites=10, alpha=0.1, return_mean=args.return_mean)
    env = gym.make(ENV)
    planner = make_planner(args.planner, simulator_objective(resolve_reward(ENV, args.reward)),
                           env.action_space.low, env.action_space.high, args.horizon,
                           torch.Generator().manual_seed(0), **options)
    agent = MPCAgent(planner, torch.device("cpu"), warm_start=True)
    obs, _ = env.reset(seed=args.seed)
    total, start = 0.0, time.time()
    for _ in range(args.steps):
        obs, reward, terminated, _, _ = env.step(agent.act(obs))
        total += reward
        if terminated:
            break
    print(f"H={args.horizon} {args.planner} return_mean={args.return_mean} "
          f"reward={args.reward}: return {total:.0f} of {args.steps} in "
          f"{time.time() - start:.0f} s, last obs {np.round(obs, 3)}")


if __name__ == "__main__":
    main()
