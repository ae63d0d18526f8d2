"""What a run writes down: one metrics row per iteration, one episodes.csv row per training
episode, the reward model's view of each episode, and the summary of a finished run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from dynaplan.config import TrainConfig
from dynaplan.data import ReplayBuffer
from dynaplan.episodes import Episode, row_ranges
from dynaplan.models import FitResult
from dynaplan.runstate import History
from dynaplan.safe_files import write_text
from dynaplan.types import RewardFn

EPISODES_HEADER = "iteration,episode,length,return,predicted_return\n"


class EpisodesLog:
    """episodes.csv: the rows a run has so far, rewritten whole through a temporary file
    renamed over it (safe_files.py) whenever rows are added. `root`: the run folder."""

    def __init__(self, path: Path, rows: list[list[Any]], root: Path) -> None:
        self.path, self.root = path, root
        self.rows: list[str] = []
        self.append(rows)

    def append(self, rows: list[list[Any]]) -> None:
        self.rows += [f"{it},{k},{length},{ret!r},{predicted!r}\n"
                      for it, k, length, ret, predicted in rows]
        write_text(self.path, EPISODES_HEADER + "".join(self.rows), self.root)


def predict_returns(reward: RewardFn, buffer: ReplayBuffer, episodes: list[Episode],
                    device: torch.device) -> None:
    """Set each episode's `predicted_return`: the planning reward's sum over its real
    transitions. With the learned reward model that is the seed's "predicted return";
    with the env's known reward it is the observed return again (up to float32), with a
    shaped or a user's reward that reward's view of the episode. The episodes are the
    last ones added to `buffer`, in order."""
    for ep, (lo, hi) in zip(episodes, row_ranges(episodes, len(buffer)), strict=True):
        obs, action, next_obs = (torch.as_tensor(a[lo:hi], device=device) for a in
                                 (buffer.obs, buffer.action, buffer.next_obs))
        with torch.no_grad():
            ep.predicted_return = float(reward(obs, action, next_obs).sum())


def metrics_row(it: int, env_steps: int, played: list[Episode], fit: FitResult,
                latency: tuple[float, float]) -> dict[str, Any]:
    """The iteration's row of metrics.csv before evaluation and timing are added."""
    episodes = [ep for ep in played if ep.dropped is None]
    nan = float("nan")  # the reward model's losses where it is not fitted
    return {
        "iteration": it,
        "env_steps": env_steps,
        "train/episodes": len(episodes),
        "train/dropped_episodes": len(played) - len(episodes),
        "train/return": float(np.mean([e.ret for e in episodes])),
        "train/predicted_return": float(np.mean([e.predicted_return for e in episodes])),
        "model/dynamics_train_loss": fit.train["dynamics"],
        "model/dynamics_valid_loss": fit.valid["dynamics"],
        "model/reward_train_loss": fit.train.get("reward", nan),
        "model/reward_valid_loss": fit.valid.get("reward", nan),
        "time/fit_s": fit.seconds,
        "time/plan_ms_p50": latency[0],
        "time/plan_ms_p99": latency[1],
    }


def report(echo: Callable[[str], object], bar: tqdm, row: dict[str, Any],
           kept: list[Episode], fitted: FitResult) -> None:
    """An iteration's lines (one per kept episode, one for the iteration) and the progress
    bar's figures."""
    it = row["iteration"]
    for k, ep in enumerate(kept):
        echo(f"iteration {it} episode {k}: observed/predicted return "
             f"{ep.ret:.1f}/{ep.predicted_return:.1f}")
    p50, p99 = row["time/plan_ms_p50"], row["time/plan_ms_p99"]
    shown = row.get("eval/return", row["train/return"])
    bar.set_postfix(ret=f"{shown:.1f}", plan_ms=f"{p50:.1f}")
    evaluated = f", eval {row['eval/return']:.1f}" if "eval/return" in row else ""
    echo(f"iteration {it}: return {row['train/return']:.1f}{evaluated}, dynamics valid loss "
         f"{fitted.valid['dynamics']:.2e}, fit {fitted.seconds:.1f}s, plan {p50:.1f} ms "
         f"(p99 {p99:.1f})")


def eval_columns(returns: list[float], lengths: list[int] | None = None) -> dict[str, float]:
    """eval/return (mean), its min and max over the episodes that did not fail (NaN), and
    with `lengths` their mean length in steps (eval/length)."""
    values = np.asarray(returns)
    good = np.isfinite(values)
    ok = values[good]
    nan = float("nan")
    out = {"eval/return": float(np.mean(ok)) if ok.size else nan,
           "eval/return_min": float(np.min(ok)) if ok.size else nan,
           "eval/return_max": float(np.max(ok)) if ok.size else nan}
    if lengths is not None:
        out["eval/length"] = float(np.mean(np.asarray(lengths)[good])) if ok.size else nan
    return out


def summary(config: TrainConfig, history: History, env_steps: int, wall_s: float,
            device: torch.device, rollout_kernel: str,
            termination: str = "none") -> dict[str, Any]:
    """summary.json of a finished run; `termination`: what the planner's returns stopped
    at (none, known, learned, or the function given)."""
    rows = history.rows
    last = rows[-1]
    plan_ms = history.plan_ms or [float("nan")]
    return {
        "env": config.env,
        "planner": config.planner.name,
        "seed": config.seed,
        "iterations": config.iterations,
        "env_steps": env_steps,
        "final_train_return": last["train/return"],
        "final_eval_return": last.get("eval/return"),
        "best_train_return": max(r["train/return"] for r in rows),
        "dropped_episodes": int(history.counters["dropped_random_episodes"])
        + sum(int(r.get("train/dropped_episodes", 0)) for r in rows),
        "plan_ms_p50": float(np.median(plan_ms)),
        "plan_ms_p99": float(np.percentile(plan_ms, 99)),
        "fit_s_total": float(sum(r["time/fit_s"] for r in rows)),
        "wall_s": wall_s,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "rollout_kernel": rollout_kernel,  # what --rollout-kernel auto chose
        "termination": termination,  # what --termination auto chose
    }


def columns(rows: list[dict]) -> dict[str, list[float]]:
    """Metrics rows as columns (NaN where a row has no value), for the plots."""
    keys = rows[0].keys() | {k for r in rows for k in r}
    return {k: [r.get(k, float("nan")) for r in rows] for k in keys}
