"""Load a run folder as an agent and play episodes with it: one step at a time, then
several environments planned as one batch.

    python examples/load_and_act.py [RUN_DIR] [--quick]

Without RUN_DIR: the newest run under ./runs (examples/train_and_act.py writes one).
"""

import argparse
import os
from pathlib import Path

import numpy as np

import dynaplan


def newest_run(root: Path = Path("runs")) -> Path:
    found = sorted(root.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no run folder under {root}/: run examples/train_and_act.py first")
    return found[-1].parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="a folder dynaplan train wrote")
    parser.add_argument("--quick", action="store_true", default="DYNAPLAN_QUICK" in os.environ,
                        help="short episodes (what the tests run)")
    args = parser.parse_args()
    steps = 20 if args.quick else 200
    agent = dynaplan.load(args.run_dir or newest_run(), device="cpu")
    print(f"loaded {agent.run_dir}: iteration {agent.iteration}, {agent.env_steps} env steps, "
          f"planner {agent.config.planner.name}")

    envs = [agent.make_env() for _ in range(3)]
    obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])  # [B, O]
    agent.reset()
    returns = np.zeros(len(envs))
    for _ in range(steps):  # Pendulum's episodes all last 200 steps: no env ends early
        actions = agent.act(obs)  # [B, O] -> [B, A]
        for i, env in enumerate(envs):
            obs[i], reward, _, _, _ = env.step(actions[i])
            returns[i] += float(reward)
    for env in envs:
        env.close()
    print(f"returns over {steps} steps: {', '.join(f'{r:.1f}' for r in returns)}")


if __name__ == "__main__":
    main()
