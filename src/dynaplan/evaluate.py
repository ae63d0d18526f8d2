"""`dynaplan eval`: load a run's last checkpoint and act with its planner."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from dynaplan.agent import MPCAgent
from dynaplan.build import build_models, build_objective, build_planner, resolve_device
from dynaplan.checkpoint import load_models
from dynaplan.config import TrainConfig
from dynaplan.envs import make_env
from dynaplan.errors import ConfigError
from dynaplan.rollout import evaluate, warn_stderr
from dynaplan.video import save_mp4


def load_run_config(run_dir: Path) -> TrainConfig:
    path = run_dir / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.json)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a mapping of options")
    return TrainConfig.from_dict(data, source=str(path))


def evaluate_run(run_dir: Path, episodes: int, video: bool, seed: int, device: str) -> dict:
    config = load_run_config(run_dir)
    dev = resolve_device(device)
    if dev.type != "cuda" and config.cuda_graph == "on":  # a GPU run evaluated elsewhere
        config = dataclasses.replace(config, cuda_graph="off", device=dev.type)
    envs = [make_env(config.env, render=video and i == 0)[0] for i in range(episodes)]
    _, spec = make_env(config.env)
    dynamics, reward = build_models(spec, dev, config)
    iteration = load_models(run_dir / "checkpoints", dynamics, reward, warn_stderr)
    dynamics.eval()
    reward.eval()
    # an ensemble's particles draw from a generator of their own
    objective = build_objective(config, dynamics, reward,
                                torch.Generator(device=dev).manual_seed(seed + 1))
    objective.refresh()
    gen = torch.Generator(device=dev).manual_seed(seed)
    agent = MPCAgent(build_planner(config, objective, spec, gen), dev)
    frames: list[np.ndarray] | None = [] if video else None
    returns = evaluate(envs, agent, frames)
    p50, p99 = agent.latency_ms()
    result = {
        "run_dir": str(run_dir),
        "checkpoint_iteration": iteration,
        "episodes": episodes,
        "return_mean": float(np.mean(returns)),
        "return_min": float(np.min(returns)),
        "return_max": float(np.max(returns)),
        "returns": returns,
        "plan_ms_p50": p50,
        "plan_ms_p99": p99,
    }
    if frames:
        path = save_mp4(frames, run_dir / "videos" / "eval.mp4",
                        fps=envs[0].metadata.get("render_fps", 30))
        result["video"] = str(path)
    for env in envs:
        env.close()
    return result
