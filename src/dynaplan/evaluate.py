"""`dynaplan eval`: load a run's checkpoint (the last, or one iteration's) and act with
its planner."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dynaplan.agent import MPCAgent
from dynaplan.build import build_models, build_objective, build_planner, resolve_device
from dynaplan.checkpoint import Checkpoint, load_models
from dynaplan.config import GPU_ONLY, TrainConfig
from dynaplan.envs import EnvSpec, make_env
from dynaplan.errors import ConfigError
from dynaplan.planners.objective import kernel_unavailable
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


@dataclass(frozen=True)
class LoadedRun:
    """A run folder's models and planner, loaded from one of its checkpoints."""

    config: TrainConfig
    spec: EnvSpec
    dynamics: nn.Module
    reward: nn.Module
    checkpoint: Checkpoint
    agent: MPCAgent

    @property
    def env_steps(self) -> int | None:
        """Environment steps of the run at the end of the checkpoint's iteration."""
        rows = self.checkpoint.state.get("metrics") or []
        steps = rows[-1].get("env_steps") if rows and isinstance(rows[-1], dict) else None
        return int(steps) if isinstance(steps, (int, float)) else None


def load_agent(run_dir: Path, device: str = "auto", seed: int = 0,
               iteration: int | None = None, override: dict | None = None) -> LoadedRun:
    """Build the run's models, load a checkpoint into them (the newest, or the one of
    `iteration`) and wrap its planner in an agent. `override` replaces config options
    (planner settings, for example) before anything is built."""
    config = load_run_config(run_dir)
    if override:
        config = dataclasses.replace(config, **override)
    dev = resolve_device(device)
    gpu_only = [k for k, v in GPU_ONLY.items() if getattr(config, k) == v]
    if dev.type != "cuda" and gpu_only:  # a GPU run evaluated elsewhere: its defaults
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        config = dataclasses.replace(config, device=dev.type,
                                     **{k: defaults[k] for k in gpu_only})
    if config.rollout_kernel == "native" and (dev.type != "cpu" or kernel_unavailable("native")):
        # a native-kernel run evaluated on a GPU or without a compiler: the torch path
        # plans the same (to float rounding)
        config = dataclasses.replace(config, device=dev.type, rollout_kernel="torch")
    _, spec = make_env(config.env)
    dynamics, reward = build_models(spec, dev, config)
    checkpoint = load_models(run_dir / "checkpoints", dynamics, reward, warn_stderr, iteration)
    dynamics.eval()
    reward.eval()
    # an ensemble's particles draw from a generator of their own
    objective = build_objective(config, dynamics, reward,
                                torch.Generator(device=dev).manual_seed(seed + 1))
    objective.refresh()
    gen = torch.Generator(device=dev).manual_seed(seed)
    agent = MPCAgent(build_planner(config, objective, spec, gen), dev)
    return LoadedRun(config, spec, dynamics, reward, checkpoint, agent)


def evaluate_run(run_dir: Path, episodes: int, video: bool, seed: int, device: str,
                 iteration: int | None = None) -> dict:
    loaded = load_agent(run_dir, device, seed, iteration)
    envs = [make_env(loaded.config.env, render=video and i == 0)[0] for i in range(episodes)]
    frames: list[np.ndarray] | None = [] if video else None
    returns = evaluate(envs, loaded.agent, frames)
    p50, p99 = loaded.agent.latency_ms()
    result = {
        "run_dir": str(run_dir),
        "checkpoint_iteration": loaded.checkpoint.iteration,
        "env_steps": loaded.env_steps,
        "episodes": episodes,
        "return_mean": float(np.mean(returns)),
        "return_min": float(np.min(returns)),
        "return_max": float(np.max(returns)),
        "returns": returns,
        "plan_ms_p50": p50,
        "plan_ms_p99": p99,
    }
    if frames:
        name = "eval.mp4" if iteration is None else f"eval_iter{iteration}.mp4"
        path = save_mp4(frames, run_dir / "videos" / name,
                        fps=envs[0].metadata.get("render_fps", 30))
        result["video"] = str(path)
    for env in envs:
        env.close()
    return result
