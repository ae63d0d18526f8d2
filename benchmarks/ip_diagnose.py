"""Why does a learned InvertedPendulum-v5 run fall? Two checks on a run folder.

1. Model error: the dynamics ensemble's mean prediction on the run's own buffer, as MSE
   per output (normalized units), split into rows near the end of the cart's rail
   (|x| > 0.95 before or after the step, where the slider hits its joint limit) and the rest.
2. Episodes: the run's planner acts from the last checkpoint on the given reset seeds;
   prints the steps survived and the cart position (|x| near 1: it ran into the rail).
   `--override` replaces planner options (JSON, train option names), `--weights` the shaped
   reward's angle, position and velocity weights, `--x-max` counts |x| beyond it as a fall.

    python benchmarks/ip_diagnose.py RUN --reset-seeds 100 101 102
    python benchmarks/ip_diagnose.py RUN --override '{"horizon": 50}'
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dynaplan.envs import rewards as reward_registry
from dynaplan.envs.terminations import inverted_pendulum_termination
from dynaplan.runs import load_agent


def shaped(weights: tuple[float, float, float], x_max: float):
    wa, wx, wv = weights

    def reward(obs: torch.Tensor, action: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        up = (~inverted_pendulum_termination(obs, action, nxt)) & (nxt[..., 0].abs() < x_max)
        return up.to(action.dtype) * (1.0 - wa * (nxt[..., 1] / 0.2) ** 2
                                      - wx * nxt[..., 0] ** 2
                                      - wv * nxt[..., 2].clamp(-2, 2) ** 2 / 4)
    return reward


def model_error(checkpoint: Path, dynamics) -> None:
    data = np.load(checkpoint / "buffer.npz")
    obs, act, nxt = (torch.tensor(data[k]) for k in ("obs", "action", "next_obs"))
    with torch.no_grad():
        x = dynamics.input_norm.normalize(torch.cat([obs, act], -1))
        y = dynamics.output_norm.normalize(nxt - obs)
        mean, _ = dynamics(x.expand(dynamics.members, *x.shape))
    err = ((mean.mean(0) - y) ** 2).numpy()
    rail = (obs[:, 0].abs() > 0.95) | (nxt[:, 0].abs() > 0.95)
    rail = rail.numpy()
    fmt = lambda a: "[" + ", ".join(f"{v:.2g}" for v in a) + "]"  # noqa: E731
    print(f"buffer {checkpoint.name}: {len(err)} rows, {rail.sum()} near the rail end")
    print(f"  MSE per output [x, theta, x_dot, theta_dot], away from the rail end: "
          f"{fmt(err[~rail].mean(0))}")
    if rail.any():
        print(f"  near the rail end: {fmt(err[rail].mean(0))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--reset-seeds", type=int, nargs="+", default=[100, 101, 102])
    p.add_argument("--override", default="{}", help="train options as JSON")
    p.add_argument("--weights", help="replace the shaped reward by 1 - A (theta/0.2)^2 - "
                   "X x^2 - V x_dot^2/4 while upright: A,X,V (default: dynaplan's own)")
    p.add_argument("--x-max", type=float, default=float("inf"))
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.weights is not None or args.x_max != float("inf"):
        default = (reward_registry.IP_ANGLE_WEIGHT, reward_registry.IP_POSITION_WEIGHT, 0.0)
        weights = (tuple(float(w) for w in args.weights.split(",")) if args.weights
                   else default)
        reward_registry.SHAPED_REWARDS["InvertedPendulum-v5"] = shaped(weights, args.x_max)
    run = load_agent(args.run, "cpu", seed=0, override=json.loads(args.override))
    model_error(run.checkpoint.path, run.dynamics)
    env, _ = run.env.make()
    agent = run.agent
    for seed in args.reset_seeds:
        obs, _ = env.reset(seed=seed)
        agent.reset()
        xs = []
        for _ in range(1000):
            obs, _, terminated, truncated, _ = env.step(agent.act(obs[None].astype(np.float32))[0])
            xs.append(float(obs[0]))
            if terminated or truncated:
                break
        at = [round(xs[i], 2) for i in (99, 199, 399) if i < len(xs)]
        print(f"reset seed {seed}: {len(xs)} steps, last x {xs[-1]:.3f}, "
              f"max |x| {max(map(abs, xs)):.3f}, x at steps 100/200/400 {at}")


if __name__ == "__main__":
    main()
