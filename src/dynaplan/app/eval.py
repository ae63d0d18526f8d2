"""`dynaplan eval`: load a run's checkpoint (the last, or one iteration's) and act with
its planner on evaluation episodes; a progress bar over the steps on stderr, then one
line of results (or, with --json, all of them as JSON)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dynaplan.envs import EnvGiven
from dynaplan.envs.make import renders
from dynaplan.episodes import evaluate
from dynaplan.errors import ConfigError
from dynaplan.runs import VIDEOS, LoadedRun, load_agent, load_run_config
from dynaplan.types import DEVICES
from dynaplan.video import save_mp4


def evaluate_run(run_dir: Path, episodes: int, video: bool, seed: int, device: str,
                 iteration: int | None = None, env: EnvGiven | None = None,
                 progress: bool = False) -> dict:
    """`episodes` evaluation episodes of the run's checkpoint, planned as one batch; the
    result as `dynaplan eval --json` prints it. `env`: what to act in instead of the run's
    own environment (runs.load_agent); an env instance plays one episode. `progress`: a
    bar over the steps on stderr."""
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
        return _evaluate(run_dir, loaded, envs, episodes, video, iteration, progress)
    finally:
        for made in envs:
            source.close(made)


def _evaluate(run_dir: Path, loaded: LoadedRun, envs: list, episodes: int, video: bool,
              iteration: int | None, progress: bool) -> dict:
    frames: list[np.ndarray] | None = [] if video else None
    lengths: list[int] = []
    spec = envs[0].spec
    limit = spec.max_episode_steps if spec is not None else None  # the bar's total, if known
    bar = tqdm(total=limit, desc=f"eval {episodes} episodes", unit="step",
               disable=not progress)

    def step(running: int) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{running} running", refresh=False)

    try:
        returns = evaluate(envs, loaded.agent, frames, lengths=lengths, on_step=step)
        bar.total = bar.n  # episodes that ended before the limit end the bar there
    finally:
        bar.close()
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
    p = sub.add_parser("eval",
                       help="act with a trained run's models and planner; prints its return",
                       description="Load a run's last checkpoint (or one iteration's) and "
                                   "run evaluation episodes.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by dynaplan train")
    p.add_argument("--episodes", type=int, default=10,
                   help="episodes on fixed reset seeds, planned together (default: 10)")
    p.add_argument("--video", action="store_true", help="save an mp4 of the first episode")
    p.add_argument("--iteration", metavar="K", type=int,
                   help="use the checkpoint written after iteration K (default: the newest); "
                        "the result's env_steps are the run's steps at the end of K")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the planner's sampling (default: 0)")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="torch device; auto picks cuda when available (default: auto)")
    p.add_argument("--json", action="store_true",
                   help="print every figure (each episode's return and length, plan ms p50 "
                        "and p99) as JSON instead of one line")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {args.episodes}")
    if args.iteration is not None and args.iteration < 0:
        raise ConfigError(f"--iteration must be 0 or more, got {args.iteration}")
    run_dir = Path(args.run_dir)
    result = evaluate_run(run_dir, args.episodes, args.video, args.seed, args.device,
                          args.iteration, progress=not args.quiet)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(summary_line(load_run_config(run_dir).env, result))
    return 0


def summary_line(env: str, result: dict) -> str:
    """`evaluate_run`'s result in `env` in one line a person reads, e.g. "Pendulum-v1, checkpoint
    of iteration 9 (2,000 env steps): return -152.3 mean over 10 episodes (min -240.1,
    max -120.5), plan 12.3 ms p50"."""
    steps = result["env_steps"]
    where = (f"{env}, checkpoint of iteration {result['checkpoint_iteration']}"
             + (f" ({steps:,} env steps)" if steps is not None else ""))
    returns = [r for r in result["returns"] if math.isfinite(r)]
    failed = len(result["returns"]) - len(returns)
    n = len(result["returns"])
    if not returns:
        line = f"{where}: all {n} episodes failed"
    else:
        line = (f"{where}: return {np.mean(returns):.1f} mean over {len(returns)} episode"
                f"{'s' if len(returns) != 1 else ''} (min {min(returns):.1f}, max "
                f"{max(returns):.1f})")
        if failed:
            line += f", {failed} of {n} failed"
    line += f", plan {result['plan_ms_p50']:.1f} ms p50"
    if "video" in result:
        line += f", video {result['video']}"
    return line
