"""The MBRL outer loop (the seed's Algorithm 1) with outputs a person can use.

    collect random trajectories
    for each iteration: fit models on all data -> act with the MPC planner for
    `steps_per_iteration` steps, adding every transition -> (evaluate) -> log, checkpoint

Everything random derives from `config.seed`: torch's global generator (weight init),
a numpy generator (train/valid split), and one torch generator each for fitting, acting
and evaluating, so enabling evaluation does not change the training run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dynaplan.agent import MPCAgent
from dynaplan.build import build_models, build_objective, build_planner, resolve_device
from dynaplan.checkpoint import save_checkpoint
from dynaplan.config import TrainConfig
from dynaplan.data import ReplayBuffer
from dynaplan.envs import known_reward, make_env
from dynaplan.errors import ConfigError
from dynaplan.metrics import MetricsLog
from dynaplan.models import ModelFitter, RewardModel
from dynaplan.plots import plot_run
from dynaplan.rollout import collect_random, evaluate, run_episodes
from dynaplan.video import save_mp4


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict


def default_run_dir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{config.env}__{config.planner}__s{config.seed}__{stamp}"


def prepare_run_dir(path: Path) -> Path:
    """Create the run folder; refuse one that already holds a run, or cannot be written."""
    if (path / "config.json").exists():
        raise ConfigError(f"{path} already holds a run; choose another --out")
    try:
        for sub in ("checkpoints", "plots", "videos"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write run folder {path}: {exc.strerror or exc}") from None
    return path


def train(
    config: TrainConfig, out: Path | None = None, progress: bool = True, echo=print
) -> RunResult:
    """Run the whole loop; returns the run folder and the summary written there."""
    device = resolve_device(config.device)
    if config.reward == "known":
        known_reward(config.env)  # refuse before anything is written
    env, spec = make_env(config.env, render=config.video_every > 0)
    eval_envs = [make_env(config.env)[0] for _ in range(config.eval_episodes)]
    run_dir = prepare_run_dir(out or default_run_dir(config))
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    metrics = MetricsLog(run_dir / "metrics.csv")
    episodes_log = open(run_dir / "episodes.csv", "w")
    episodes_log.write("iteration,episode,length,return,predicted_return\n")

    seed = config.seed
    torch.manual_seed(seed)
    split_rng = np.random.default_rng(seed)
    fit_gen = torch.Generator().manual_seed(seed)
    act_gen = torch.Generator(device=device).manual_seed(seed + 1)
    eval_gen = torch.Generator(device=device).manual_seed(seed + 2)
    env.action_space.seed(seed)

    start = time.perf_counter()
    buffer = ReplayBuffer(spec.obs_dim, spec.action_dim, capacity=4096)
    random_eps = collect_random(env, buffer, config.random_trajectories, seed, progress)
    echo(f"random data: {len(buffer)} transitions, mean return "
         f"{np.mean([e.ret for e in random_eps]):.1f}")

    dynamics, reward_model = build_models(spec, device)
    fitter = ModelFitter(dynamics, reward_model, config.lr, config.epochs, config.batch_size,
                         config.input_noise)
    objective = build_objective(config, dynamics, reward_model)
    agent = MPCAgent(build_planner(config, objective, spec, act_gen), device)
    eval_agent = MPCAgent(build_planner(config, objective, spec, eval_gen), device)
    all_plan_ms: list[float] = []

    bar = tqdm(range(config.iterations), desc=f"{config.env} {config.planner}",
               disable=not progress)
    for it in bar:
        t0 = time.perf_counter()
        fit = fitter.fit(buffer, buffer.split(config.valid_fraction, split_rng), fit_gen, progress)
        objective.refresh()
        record = config.video_every > 0 and (
            (it + 1) % config.video_every == 0 or it == config.iterations - 1
        )
        agent.reset_timing()
        episodes = run_episodes(env, agent, buffer, config.steps_per_iteration, record, progress)
        offset = len(buffer)
        for ep in reversed(episodes):  # the reward model's view of each real episode
            ep.predicted_return = _predicted_slice(reward_model, buffer, offset - ep.length, offset)
            offset -= ep.length
        for k, ep in enumerate(episodes):
            episodes_log.write(f"{it},{k},{ep.length},{ep.ret!r},{ep.predicted_return!r}\n")
            echo(f"iteration {it} episode {k}: observed/predicted return "
                 f"{ep.ret:.1f}/{ep.predicted_return:.1f}")
        episodes_log.flush()
        p50, p99 = agent.latency_ms()
        all_plan_ms.extend(1e3 * s for s in agent.plan_seconds)
        row = {
            "iteration": it,
            "env_steps": len(buffer),
            "train/episodes": len(episodes),
            "train/return": float(np.mean([e.ret for e in episodes])),
            "train/predicted_return": float(np.mean([e.predicted_return for e in episodes])),
            "model/dynamics_train_loss": fit.dynamics_train,
            "model/dynamics_valid_loss": fit.dynamics_valid,
            "model/reward_train_loss": fit.reward_train,
            "model/reward_valid_loss": fit.reward_valid,
            "time/fit_s": fit.seconds,
            "time/plan_ms_p50": p50,
            "time/plan_ms_p99": p99,
        }
        if eval_envs:
            returns = evaluate(eval_envs, eval_agent)
            row.update({"eval/return": float(np.mean(returns)),
                        "eval/return_min": float(np.min(returns)),
                        "eval/return_max": float(np.max(returns))})
        row["time/iteration_s"] = time.perf_counter() - t0
        metrics.append(row)
        save_checkpoint(run_dir / "checkpoints", dynamics, reward_model, buffer, it)
        if record and episodes[-1].frames:
            save_mp4(episodes[-1].frames, run_dir / "videos" / f"iteration_{it:04d}.mp4",
                     fps=env.metadata.get("render_fps", 30))
        shown = row.get("eval/return", row["train/return"])
        bar.set_postfix(ret=f"{shown:.1f}", plan_ms=f"{p50:.1f}")
        echo(f"iteration {it}: return {row['train/return']:.1f}"
             + (f", eval {row['eval/return']:.1f}" if eval_envs else "")
             + f", dynamics valid loss {fit.dynamics_valid:.2e}, fit {fit.seconds:.1f}s, "
             f"plan {p50:.1f} ms (p99 {p99:.1f})")
    episodes_log.close()
    env.close()
    for e in eval_envs:
        e.close()

    plot_run(_columns(metrics.rows), run_dir / "plots",
             f"{config.env} - {config.planner} (seed {config.seed})")
    last = metrics.rows[-1]
    summary = {
        "env": config.env,
        "planner": config.planner,
        "seed": config.seed,
        "iterations": config.iterations,
        "env_steps": len(buffer),
        "final_train_return": last["train/return"],
        "final_eval_return": last.get("eval/return"),
        "best_train_return": max(r["train/return"] for r in metrics.rows),
        "plan_ms_p50": float(np.median(all_plan_ms)),
        "plan_ms_p99": float(np.percentile(all_plan_ms, 99)),
        "fit_s_total": float(sum(r["time/fit_s"] for r in metrics.rows)),
        "wall_s": time.perf_counter() - start,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo(f"run folder: {run_dir}")
    return RunResult(run_dir=run_dir, summary=summary)


def _predicted_slice(reward_model: RewardModel, buffer: ReplayBuffer, lo: int, hi: int) -> float:
    """The reward model's sum over real transitions lo..hi (the seed's 'predicted return'
    of an episode)."""
    with torch.no_grad():
        device = next(reward_model.parameters()).device
        obs = torch.as_tensor(buffer.obs[lo:hi], device=device)
        action = torch.as_tensor(buffer.action[lo:hi], device=device)
        return float(reward_model(obs, action).sum())


def _columns(rows: list[dict]) -> dict[str, list[float]]:
    keys = rows[0].keys() | {k for r in rows for k in r}
    return {k: [r.get(k, float("nan")) for r in rows] for k in keys}
