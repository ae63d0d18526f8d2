"""`dynaplan eval`: load a run's checkpoint (the last, or one iteration's) and act with
its planner on evaluation episodes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dynaplan.envs import EnvGiven
from dynaplan.envs.make import renders
from dynaplan.episodes import evaluate
from dynaplan.errors import ConfigError
from dynaplan.runs import VIDEOS, LoadedRun, load_agent
from dynaplan.types import DEVICES
from dynaplan.video import save_mp4


def evaluate_run(run_dir: Path, episodes: int, video: bool, seed: int, device: str,
                 iteration: int | None = None, env: EnvGiven | None = None) -> dict:
    """`episodes` evaluation episodes of the run's checkpoint, planned as one batch; the
    result as `dynaplan eval` prints it. `env`: what to act in instead of the run's own
    environment (runs.load_agent); an env instance plays one episode."""
    loaded = load_agent(run_dir, device, seed, iteration, env=env)
    source = loaded.env
    envs = []
    try:
        for i in range(episodes):
            envs.append(source.make(render=video and i == 0)[0])
        if video and not renders(envs[0]):
            raise ConfigError(f"environment {source.name!r} does not render rgb_array frames "
                              "(a factory takes a render_mode argument to do so); evaluate "
                              "without --video")
        return _evaluate(run_dir, loaded, envs, episodes, video, iteration)
    finally:
        for made in envs:
            source.close(made)


def _evaluate(run_dir: Path, loaded: LoadedRun, envs: list, episodes: int, video: bool,
              iteration: int | None) -> dict:
    frames: list[np.ndarray] | None = [] if video else None
    lengths: list[int] = []
    returns = evaluate(envs, loaded.agent, frames, lengths=lengths)
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
        "lengths": lengths,
        "plan_ms_p50": p50,
        "plan_ms_p99": p99,
    }
    if frames:
        name = "eval.mp4" if iteration is None else f"eval_iter{iteration}.mp4"
        path = save_mp4(frames, run_dir / VIDEOS / name,
                        fps=envs[0].metadata.get("render_fps", 30), root=run_dir)
        result["video"] = str(path)
    return result


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="act with a trained run's models and planner",
                       description="Load a run's last checkpoint (or one iteration's) and "
                                   "run evaluation episodes.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by dynaplan train")
    p.add_argument("--episodes", type=int, default=10, help="episodes on fixed reset seeds")
    p.add_argument("--video", action="store_true", help="save an mp4 of the first episode")
    p.add_argument("--iteration", metavar="K", type=int,
                   help="use the checkpoint written after iteration K (default: the newest); "
                        "the result's env_steps are the run's steps at the end of K")
    p.add_argument("--seed", type=int, default=0, help="seed of the planner's sampling")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="torch device; auto picks cuda when available")


def run(args: argparse.Namespace) -> int:
    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {args.episodes}")
    if args.iteration is not None and args.iteration < 0:
        raise ConfigError(f"--iteration must be 0 or more, got {args.iteration}")
    result = evaluate_run(Path(args.run_dir), args.episodes, args.video, args.seed, args.device,
                          args.iteration)
    print(json.dumps(result, indent=2))
    return 0
