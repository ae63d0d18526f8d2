"""Issue 18's benchmark summary for a folder of runs (benchmarks/own_envs.sh): per
environment, the final evaluation return of each seed against a uniform-random and a
zero-action policy on the same reset seeds (EVAL_SEED_BASE + i, as the runs evaluate), the
evaluation episode length over the iterations, the learned termination's validation recall
and what the planner stopped its returns at; written as OUT/own_envs_summary.json and
printed as a markdown table.

    python benchmarks/own_envs_summary.py OUT
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from dynaplan.envs import make_env
from dynaplan.episodes import EVAL_SEED_BASE


def baseline(env_id: str, episodes: int, policy: str) -> list[float]:
    """Returns of `episodes` episodes of a random or zero-action policy on the runs'
    evaluation reset seeds."""
    returns = []
    for i in range(episodes):
        env, spec = make_env(env_id)
        env.action_space.seed(i)
        obs, _ = env.reset(seed=EVAL_SEED_BASE + i)
        total, done = 0.0, False
        while not done:
            action = env.action_space.sample() if policy == "random" else \
                np.zeros(spec.action_dim, np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        env.close()
        returns.append(total)
    return returns


def rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def main(out: Path) -> None:
    runs = defaultdict(list)
    for summary in sorted(out.glob("*/summary.json")):
        info = json.loads(summary.read_text())
        runs[info["env"]].append((summary.parent, info))
    result = {}
    for env_id, found in runs.items():
        random_, zero = baseline(env_id, 5, "random"), baseline(env_id, 5, "zero")
        seeds = []
        for run, info in found:
            metrics = rows(run / "metrics.csv")
            evaluated = [r for r in metrics if np.isfinite(r["eval/return"])]
            seeds.append({
                "run": run.name, "seed": info["seed"], "env_steps": info["env_steps"],
                "final_eval_return": info["final_eval_return"],
                "eval_length_first": evaluated[0]["eval/length"],
                "eval_length_last": evaluated[-1]["eval/length"],
                "eval_length": [r["eval/length"] for r in evaluated],
                "termination": info.get("termination"),
                "termination_recall_last": metrics[-1]["model/termination_recall"],
                "termination_precision_last": metrics[-1]["model/termination_precision"],
                "wall_s": info["wall_s"], "plan_ms_p50": info["plan_ms_p50"],
            })
        result[env_id] = {"random": float(np.mean(random_)), "zero": float(np.mean(zero)),
                          "seeds": seeds}
    (out / "own_envs_summary.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| env | seed | steps | final eval return | random | zero | eval length first -> "
          "last | termination | recall | precision | wall s | plan ms |")
    print("|" + "---|" * 12)
    for env_id, r in result.items():
        for s in r["seeds"]:
            print(f"| {env_id} | {s['seed']} | {s['env_steps']} | {s['final_eval_return']:.1f} "
                  f"| {r['random']:.1f} | {r['zero']:.1f} | {s['eval_length_first']:.0f} -> "
                  f"{s['eval_length_last']:.0f} | {s['termination']} | "
                  f"{s['termination_recall_last']:.2f} | {s['termination_precision_last']:.2f} "
                  f"| {s['wall_s']:.0f} | {s['plan_ms_p50']:.1f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
