"""The MBRL outer loop (the seed's Algorithm 1) with outputs a person can use.

    collect random trajectories
    for each iteration: fit models on all data -> act with the MPC planner for
    `steps_per_iteration` steps, adding every transition -> (evaluate) -> checkpoint, log

Everything random derives from `config.seed` (runstate.Generators): torch's global
generator (weight init), a numpy generator (train/valid split), one torch generator each
for fitting, acting and evaluating (so enabling evaluation does not change the training
run), and the environment's and its action space's generators.

After every iteration the whole state (runstate.py) is checkpointed (checkpoint.py), so
`resume` continues a run from its last complete iteration and, on the same device and
thread count, ends with the same metrics.csv (timing aside), episodes.csv and weights as
a run that was never stopped. SIGINT and SIGTERM stop a run at once, keeping a checkpoint
that is being written (interrupt.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from dynaplan.agent import MPCAgent
from dynaplan.build import (
    build_fitter,
    build_models,
    build_objective,
    build_planner,
    require_device,
    resolve_device,
    warm_start,
)
from dynaplan.checkpoint import (
    Checkpoint,
    atomic_write,
    checkpoint_name,
    load_latest,
    save_checkpoint,
)
from dynaplan.config import TrainConfig
from dynaplan.data import ReplayBuffer
from dynaplan.envs import make_env, planning_reward
from dynaplan.errors import ConfigError, TrainingError
from dynaplan.evaluate import load_run_config
from dynaplan.interrupt import RunInterrupted, StopSignals
from dynaplan.metrics import MetricsLog
from dynaplan.models import FitResult, RewardModel
from dynaplan.plots import plot_run
from dynaplan.rollout import Warn, collect_random, evaluate, run_episodes, warn_stderr
from dynaplan.runstate import Generators, History, capture, restore
from dynaplan.video import save_mp4

EPISODES_HEADER = "iteration,episode,length,return,predicted_return\n"


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict
    already_complete: bool = False
    """True when `resume` found every iteration done and ran none."""


def default_run_dir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / f"{config.env}__{config.planner}__s{config.seed}__{stamp}"


def prepare_run_dir(path: Path, resuming: bool = False) -> Path:
    """Create the run folder (and its subfolders); refuse one that cannot be written, or,
    unless `resuming`, one that already holds a run."""
    if not resuming and (path / "config.json").exists():
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


def write_config(run_dir: Path, config: TrainConfig) -> None:
    text = json.dumps(config.to_dict(), indent=2) + "\n"
    atomic_write(run_dir / "config.json", lambda fh: fh.write(text.encode()))


def train(
    config: TrainConfig,
    out: Path | None = None,
    progress: bool = True,
    echo=print,
    keep_checkpoints: int = 2,
    warn: Warn = warn_stderr,
) -> RunResult:
    """Run the whole loop in a new run folder; returns the folder and its summary."""
    run = _Run(config, progress, echo, warn, keep_checkpoints)  # refuses before writing
    try:
        run.dir = prepare_run_dir(out or default_run_dir(config))
        write_config(run.dir, config)
        return run.go(checkpoint=None)
    finally:
        run.close()


def resume(
    run_dir: Path,
    config: TrainConfig | None = None,
    progress: bool = True,
    echo=print,
    keep_checkpoints: int = 2,
    warn: Warn = warn_stderr,
) -> RunResult:
    """Continue the run in `run_dir` from its newest readable checkpoint (from the start
    if it has none). `config`: the run's own config, with `iterations` possibly raised
    to extend the run; any other difference is refused."""
    saved = load_run_config(run_dir)
    config = config or saved
    if dataclasses.replace(config, iterations=saved.iterations) != saved:
        raise ConfigError(f"options differ from {run_dir / 'config.json'}; a resumed run "
                          "keeps its own options (only --iterations may change)")
    checkpoint = load_latest(run_dir / "checkpoints", warn)
    done = 0 if checkpoint is None else checkpoint.iteration + 1
    if config.iterations < done:
        raise ConfigError(f"{run_dir} has already run {done} iterations; --iterations must "
                          f"be at least {done}")
    summary_path = run_dir / "summary.json"
    if checkpoint is not None and done == config.iterations == saved.iterations \
            and summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except ValueError:
            summary = None
        if isinstance(summary, dict):
            return RunResult(run_dir=run_dir, summary=summary, already_complete=True)
    run = _Run(config, progress, echo, warn, keep_checkpoints)
    try:
        run.dir = prepare_run_dir(run_dir, resuming=True)
        if config.iterations != saved.iterations:
            write_config(run_dir, config)
        echo(f"resuming {run_dir} " + ("from the start (no checkpoint yet)"
                                       if checkpoint is None else
                                       f"after iteration {checkpoint.iteration}"))
        return run.go(checkpoint)
    finally:
        run.close()


class _Run:
    """Every object of one run; `go` runs its iterations and checkpoints each."""

    def __init__(self, config: TrainConfig, progress: bool, echo, warn: Warn, keep: int) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"keep_checkpoints must be a positive integer, got {keep!r}")
        self.config, self.progress, self.echo, self.warn, self.keep = (
            config, progress, echo, warn, keep)
        self.device = resolve_device(config.device)
        if config.device == "auto" and self.device.type == "cpu":
            warn("--device auto: CUDA is not available, running on the CPU")
        # refuse what cannot run before anything is written
        require_device(config, self.device)
        if config.reward != "learned":
            planning_reward(config.env, config.reward)
        # (a known termination is checked by TrainConfig itself)
        self.env, self.spec = make_env(config.env, render=config.video_every > 0,
                                       max_episode_steps=config.train_episode_steps)
        self.eval_envs = [make_env(config.env)[0] for _ in range(config.eval_episodes)]
        self.dir = Path()
        self.last_done: int | None = None  # last checkpointed iteration
        self.history = History()
        self._episodes_log = None

    def close(self) -> None:
        if self._episodes_log is not None:
            self._episodes_log.close()
        self.env.close()
        for env in self.eval_envs:
            env.close()

    def _build(self) -> None:
        """Models, fitter, and one agent each for acting and evaluating. An ensemble's
        particles draw from their own generator per agent, so each agent gets its own
        objective; the deterministic MLP's objective draws nothing and is shared."""
        config, spec, gens = self.config, self.spec, self.gens
        self.dynamics, self.reward_model = build_models(spec, self.device, config)
        self.fitter = build_fitter(config, self.dynamics, self.reward_model)
        self.objective = build_objective(config, self.dynamics, self.reward_model,
                                         gens.particles_act)
        self.eval_objective = (
            build_objective(config, self.dynamics, self.reward_model, gens.particles_eval)
            if config.dynamics == "ensemble" else self.objective)
        self.agent = MPCAgent(build_planner(config, self.objective, spec, gens.act),
                              self.device, warm_start(config))
        self.eval_agent = MPCAgent(build_planner(config, self.eval_objective, spec, gens.eval),
                                   self.device, warm_start(config))

    # -- running -------------------------------------------------------------------------

    def go(self, checkpoint: Checkpoint | None) -> RunResult:
        self._session_start = time.perf_counter()
        self._wall_before = 0.0
        try:
            # known before the checkpoint is restored, so that a stop while it loads
            # names the iteration it resumes after, not "before the first checkpoint"
            self.last_done = None if checkpoint is None else checkpoint.iteration
            with StopSignals() as signals:
                self.signals = signals
                self._start(checkpoint)
                first = 0 if self.last_done is None else self.last_done + 1
                bar = tqdm(range(first, self.config.iterations), initial=first,
                           total=self.config.iterations,
                           desc=f"{self.config.env} {self.config.planner}",
                           disable=not self.progress)
                for it in bar:
                    self._iteration(it, bar)
                return self._finish()
        except RunInterrupted as stop:
            stop.run_dir, stop.iteration = self.dir, self.last_done
            raise

    def _start(self, checkpoint: Checkpoint | None) -> None:
        """Seed, then either collect random data and build fresh models (the order of a
        fresh run) or build and overwrite everything with the checkpoint; (re)write the
        logs so they hold exactly the checkpointed iterations."""
        config = self.config
        self.gens = Generators.seeded(config.seed, self.device, self.env)
        if checkpoint is None:
            self.buffer = ReplayBuffer(self.spec.obs_dim, self.spec.action_dim, capacity=4096)
            random_eps = collect_random(self.env, self.buffer, config.random_trajectories,
                                        config.seed, self.progress, self._counting_warn())
            self.echo(f"random data: {len(self.buffer)} transitions, mean return "
                      f"{np.mean([e.ret for e in random_eps]):.1f}")
            self._build()
        else:
            self._build()
            self.history = restore(checkpoint, config, self.device,
                                   (self.dynamics, self.reward_model), self.fitter.optimizers,
                                   self.gens)
            self.buffer, self.last_done = checkpoint.buffer, checkpoint.iteration
            self._wall_before = float(self.history.counters["wall_s"])
        self.metrics = MetricsLog(self.dir / "metrics.csv")
        for row in self.history.rows:
            self.metrics.append(row)
        self._episodes_log = open(self.dir / "episodes.csv", "w")
        self._episodes_log.write(EPISODES_HEADER)
        self._write_episode_rows(self.history.episode_rows)

    def _counting_warn(self) -> Warn:
        def warn(message: str) -> None:
            self.history.counters["dropped_random_episodes"] += 1
            self.warn(message)
        return warn

    def _wall_s(self) -> float:
        return self._wall_before + time.perf_counter() - self._session_start

    def _iteration(self, it: int, bar: tqdm) -> None:
        config, buffer = self.config, self.buffer
        t0 = time.perf_counter()
        fit = self.fitter.fit(buffer, buffer.split(config.valid_fraction, self.gens.split),
                              self.gens.fit, self.progress)
        self._check_finite(it, fit)
        self.objective.refresh()
        if self.eval_objective is not self.objective:
            self.eval_objective.refresh()
        record = config.video_every > 0 and (
            (it + 1) % config.video_every == 0 or it == config.iterations - 1
        )
        self.agent.reset_timing()
        played = run_episodes(self.env, self.agent, buffer, config.steps_per_iteration,
                              record, self.progress, warn=self.warn)
        episodes = [ep for ep in played if ep.dropped is None]
        offset = len(buffer)
        for ep in reversed(episodes):  # the reward model's view of each real episode
            ep.predicted_return = _predicted_slice(self.reward_model, buffer,
                                                   offset - ep.length, offset)
            offset -= ep.length
        new_episode_rows = [[it, k, ep.length, ep.ret, ep.predicted_return]
                            for k, ep in enumerate(episodes)]
        for k, ep in enumerate(episodes):
            self.echo(f"iteration {it} episode {k}: observed/predicted return "
                      f"{ep.ret:.1f}/{ep.predicted_return:.1f}")
        p50, p99 = self.agent.latency_ms()
        row: dict[str, Any] = {
            "iteration": it,
            "env_steps": len(buffer),
            "train/episodes": len(episodes),
            "train/dropped_episodes": len(played) - len(episodes),
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
        evaluated = bool(self.eval_envs) and (
            (it + 1) % config.eval_every == 0 or it == config.iterations - 1)
        if evaluated:
            returns = np.asarray(evaluate(self.eval_envs, self.eval_agent, warn=self.warn))
            ok = returns[np.isfinite(returns)]
            nan = float("nan")
            row.update({"eval/return": float(np.mean(ok)) if ok.size else nan,
                        "eval/return_min": float(np.min(ok)) if ok.size else nan,
                        "eval/return_max": float(np.max(ok)) if ok.size else nan})
        row["time/iteration_s"] = time.perf_counter() - t0
        with self.signals.deferred():  # a stop waits until checkpoint and logs agree
            history = self.history
            history.rows.append(row)
            history.episode_rows.extend(new_episode_rows)
            history.plan_ms.extend(1e3 * s for s in self.agent.plan_seconds)
            history.counters["wall_s"] = self._wall_s()
            json_part, tensors = capture(config, self.device, (self.dynamics, self.reward_model),
                                         self.fitter.optimizers, self.gens, history)
            try:
                save_checkpoint(self.dir / "checkpoints", it, json_part, tensors, buffer,
                                self.keep)
            except OSError as exc:
                raise TrainingError(f"could not write the checkpoint of iteration {it} in "
                                    f"{self.dir / 'checkpoints'}: {exc.strerror or exc}") from None
            self.last_done = it
            self.metrics.append(row)
            self._write_episode_rows(new_episode_rows)
        if record and episodes and episodes[-1].frames:
            save_mp4(episodes[-1].frames, self.dir / "videos" / f"iteration_{it:04d}.mp4",
                     fps=self.env.metadata.get("render_fps", 30))
        shown = row.get("eval/return", row["train/return"])
        bar.set_postfix(ret=f"{shown:.1f}", plan_ms=f"{p50:.1f}")
        self.echo(f"iteration {it}: return {row['train/return']:.1f}"
                  + (f", eval {row['eval/return']:.1f}" if evaluated else "")
                  + f", dynamics valid loss {fit.dynamics_valid:.2e}, fit {fit.seconds:.1f}s, "
                  f"plan {p50:.1f} ms (p99 {p99:.1f})")

    def _check_finite(self, it: int, fit: FitResult) -> None:
        """Stop before a diverged model is used or saved: the last checkpoint stays the
        last good one."""
        losses = (fit.dynamics_train, fit.reward_train)
        weights_ok = all(bool(torch.isfinite(t).all())
                         for model in (self.dynamics, self.reward_model)
                         for t in model.state_dict().values() if t.is_floating_point())
        if all(np.isfinite(losses)) and weights_ok:
            return
        last = ("no checkpoint was written yet" if self.last_done is None else
                "the last good checkpoint is "
                f"{self.dir / 'checkpoints' / checkpoint_name(self.last_done)}")
        raise TrainingError(
            f"model fit diverged at iteration {it} (train loss dynamics {fit.dynamics_train:.3g}, "
            f"reward {fit.reward_train:.3g}); stopped, {last} (try a smaller --lr)")

    def _write_episode_rows(self, rows: list[list[Any]]) -> None:
        assert self._episodes_log is not None
        for it, k, length, ret, predicted in rows:
            self._episodes_log.write(f"{it},{k},{length},{ret!r},{predicted!r}\n")
        self._episodes_log.flush()

    def _finish(self) -> RunResult:
        config, rows = self.config, self.history.rows
        plot_run(_columns(rows), self.dir / "plots",
                 f"{config.env} - {config.planner} (seed {config.seed})")
        last = rows[-1]
        plan_ms = self.history.plan_ms or [float("nan")]
        summary = {
            "env": config.env,
            "planner": config.planner,
            "seed": config.seed,
            "iterations": config.iterations,
            "env_steps": len(self.buffer),
            "final_train_return": last["train/return"],
            "final_eval_return": last.get("eval/return"),
            "best_train_return": max(r["train/return"] for r in rows),
            "dropped_episodes": int(self.history.counters["dropped_random_episodes"])
            + sum(int(r.get("train/dropped_episodes", 0)) for r in rows),
            "plan_ms_p50": float(np.median(plan_ms)),
            "plan_ms_p99": float(np.percentile(plan_ms, 99)),
            "fit_s_total": float(sum(r["time/fit_s"] for r in rows)),
            "wall_s": self._wall_s(),
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
            "rollout_kernel": self.objective.kernel,  # what --rollout-kernel auto chose
        }
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(self.dir / "summary.json", lambda fh: fh.write(text.encode()))
        self.echo(f"run folder: {self.dir}")
        return RunResult(run_dir=self.dir, summary=summary)


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
