"""The MBRL outer loop (the seed's Algorithm 1) with outputs a person can use.

    collect random trajectories
    for each iteration:  fit the models on all data -> act with the MPC planner for
                         `steps_per_iteration` steps, adding every transition ->
                         evaluate (optional) -> record the metrics -> checkpoint

Everything random derives from `config.seed` (runstate.Generators): torch's global
generator (weight init), a numpy generator (train/valid split), one torch generator each
for fitting, acting and evaluating (so enabling evaluation does not change the training
run), and the environment's and its action space's generators.

The environments come from `envs.env_source`: the config's `env` and `env_kwargs`, or an
id, factory or instance passed as `env=` (what the run records for it: envs/source.py).
An instance is the training env only, so a run given one takes no evaluation episodes.

After every iteration the whole state (runstate.py) is checkpointed (checkpoint.py), so
`resume` continues a run from its last complete iteration and, on the same device and
thread count, ends with the same metrics.csv (timing aside), episodes.csv and weights as
a run that was never stopped. SIGINT and SIGTERM stop a run at once, keeping a checkpoint
that is being written (interrupt.py).

What a run tells as it goes (docs/logging.md): its lines are log records of the
dynaplan.loop logger (logs.py; `echo=` / `warn=` take them instead), run.json says who
ran it with what (run_info.py), and after every iteration metrics.csv and the TensorBoard
events (tensorboard_log.py) are brought up to date, the figures (figures.py) after an
iteration once REDRAW_S seconds without evaluation have passed since the session began
or they were last drawn, and at the end and at a stop; a video
is saved after iteration 0 and every `video_every`-th one.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from dynaplan import diagnostics, record
from dynaplan.build import (
    TERMINATION_SEED,
    build_run,
    checkpoint_optimizers,
    planning_dynamics,
    require_device,
    resolve_device,
)
from dynaplan.checkpoint import Checkpoint, checkpoint_name, list_checkpoints, save_checkpoint
from dynaplan.checkpoint_read import first_line, readable_checkpoints
from dynaplan.config import TrainConfig
from dynaplan.data import ReplayBuffer
from dynaplan.data.buffer import Split
from dynaplan.envs import EnvGiven, EnvSource, env_source
from dynaplan.envs.check import check_functions
from dynaplan.envs.make import renders
from dynaplan.episodes import (
    Episode,
    Warn,
    collect_random,
    evaluate,
    row_ranges,
    run_episodes,
)
from dynaplan.errors import CheckpointError, ConfigError, TrainingError
from dynaplan.figures import RunFigures
from dynaplan.interrupt import RunInterrupted, StopSignals
from dynaplan.logs import info_or, warning_or
from dynaplan.metrics import MetricsLog
from dynaplan.models import FitResult, fit
from dynaplan.models.fitting import finite
from dynaplan.run_info import RunInfo, session
from dynaplan.runlock import RunLock
from dynaplan.runs import (
    CHECKPOINTS,
    EPISODES,
    METRICS,
    PLOTS,
    SUMMARY,
    TENSORBOARD,
    VIDEOS,
    default_run_dir,
    load_run_config,
    prepare_run_dir,
    read_summary,
    write_config,
    write_preset,
)
from dynaplan.runstate import Generators, History, capture, restore
from dynaplan.safe_files import write_text
from dynaplan.tensorboard_log import TensorBoardLog, open_log, require, why_not
from dynaplan.types import Optimizer, Transitions
from dynaplan.video import save_mp4

Echo = Callable[[str], object]
_log = logging.getLogger(__name__)

REDRAW_S = 5.0
"""Seconds of training (evaluation not counted) between two redraws of a run's figures,
at least, the first counted from the session's start (its end and a stop draw
regardless)."""


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict
    already_complete: bool = False
    """True when `resume` found every iteration done and ran none."""


def train(config: TrainConfig, out: Path | None = None, progress: bool = True,
          echo: Echo | None = None, keep_checkpoints: int = 2, warn: Warn | None = None,
          env: EnvGiven | None = None) -> RunResult:
    """Run the whole loop in a new run folder; returns the folder and its summary.
    `env`: the environment instead of `config.env` (an id, a factory called once per env
    the run needs, or an instance: the training env only); the run records it as its
    `env` (envs/source.py: a factory importable by name is made again by the CLI).
    `progress`: tqdm bars on stderr. `echo`, `warn`: receive the run's lines and warnings
    (default: INFO and WARNING records of the dynaplan.loop logger, shown only where
    logging is configured)."""
    echo, warn = info_or(echo, _log), warning_or(warn, _log)
    source = env_source(config.env, config.env_kwargs, env)
    if source.name != config.env:
        config = dataclasses.replace(config, env=source.name)
    run = _Run(config, source, progress, echo, warn, keep_checkpoints)  # refuses before writing
    try:
        run.dir = prepare_run_dir(out or default_run_dir(config))
        with RunLock(run.dir):
            write_config(run.dir, config)
            line = write_preset(run.dir, config)
            if line:
                echo(line)
            return run.go(iter(()), RunInfo(run.dir, session("train", run.device), fresh=True))
    finally:
        run.close()


def resume(run_dir: Path, config: TrainConfig | None = None, progress: bool = True,
           echo: Echo | None = None, keep_checkpoints: int = 2, warn: Warn | None = None,
           env: EnvGiven | None = None) -> RunResult:
    """Continue the run in `run_dir` from its newest readable checkpoint (from the start
    if it has none). `config`: the run's own config, with `iterations` possibly raised
    to extend the run; any other difference is refused. `env`: the run's environment
    again, where it was passed from Python (it must record as the run's `env`). The
    other arguments as for `train`."""
    echo, warn = info_or(echo, _log), warning_or(warn, _log)
    saved = load_run_config(run_dir)
    config = config or saved
    if dataclasses.replace(config, iterations=saved.iterations) != saved:
        raise ConfigError(f"options differ from {run_dir / 'config.json'}; a resumed run "
                          "keeps its own options (only --iterations may change)")
    source = env_source(config.env, config.env_kwargs, env)
    if source.name != saved.env:
        raise ConfigError(f"the environment given records as {source.name!r}, not as the "
                          f"run's {saved.env!r}; a resumed run keeps its environment")
    with RunLock(run_dir):  # refused at once while another process writes the run
        pass
    candidates = readable_checkpoints(run_dir / CHECKPOINTS, warn)
    checkpoint = next(candidates, None)
    done = 0 if checkpoint is None else checkpoint.iteration + 1
    if config.iterations < done:
        raise ConfigError(f"{run_dir} has already run {done} iterations; --iterations must "
                          f"be at least {done}")
    summary = read_summary(run_dir)
    if checkpoint is not None and done == config.iterations == saved.iterations and summary:
        return RunResult(run_dir=run_dir, summary=summary, already_complete=True)
    run = _Run(config, source, progress, echo, warn, keep_checkpoints)
    try:
        run.dir = prepare_run_dir(run_dir, resuming=True)
        with RunLock(run_dir):
            if config.iterations != saved.iterations:
                write_config(run_dir, config)
            echo(f"resuming {run_dir} " + ("from the start (no checkpoint yet)"
                                           if checkpoint is None else
                                           f"after iteration {checkpoint.iteration}"))
            info = RunInfo(run.dir, session("resume", run.device, None if checkpoint is None
                                            else checkpoint.iteration), fresh=False)
            return run.go(itertools.chain([] if checkpoint is None else [checkpoint],
                                          candidates), info)
    finally:
        run.close()


class _Run:
    """One run: its environments, generators and parts (build.RunParts), its data and its
    logs; `go` runs the iterations, each in the steps of `_iteration`."""

    def __init__(self, config: TrainConfig, source: EnvSource, progress: bool, echo: Echo,
                 warn: Warn, keep: int) -> None:
        # the session's wall time counts from here: making its environments and models too
        self._session_start, self._wall_before = time.perf_counter(), 0.0
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"keep_checkpoints must be a positive integer, got {keep!r}")
        self.config, self.progress, self.echo, self.warn, self.keep = (
            config, progress, echo, warn, keep)
        self.board: TensorBoardLog | None = None  # opened once the run folder is there
        self.device = resolve_device(config.device)
        if config.device == "auto" and self.device.type == "cpu":
            warn("--device auto: CUDA is not available, running on the CPU")
        require_device(config, self.device)  # refuse what cannot run before writing
        require(config.tensorboard)
        if source.instance is not None and config.eval_episodes > 0:
            raise ConfigError(f"eval_episodes {config.eval_episodes}: the env instance "
                              f"passed ({source.name}) is the training env only; pass a "
                              "factory, a callable that returns a new env, to evaluate")
        self.source = source
        self.env, self.spec = source.make(render=config.video_every > 0,
                                          max_episode_steps=config.train_episode_steps)
        self.eval_envs: list = []
        try:
            for _ in range(config.eval_episodes):
                self.eval_envs.append(source.make()[0])
            self.video = config.video_every > 0 and renders(self.env)
            if config.video_every > 0 and not self.video:
                warn(f"{config.env} does not render rgb_array frames (a factory takes a "
                     "render_mode argument to do so): no videos")
            self._build()
        except BaseException:
            self.close()
            raise
        self.dir = Path()
        self.figures = RunFigures(f"{config.env} - {config.planner.name} (seed {config.seed})")
        # the metrics rows the figures show, and when on the session's clock without its
        # evaluations (none yet: the session's start)
        self._drawn, self._drawn_at, self._eval_session_s = -1, self._session_start, 0.0
        self.last_done: int | None = None  # last checkpointed iteration
        self.history = History()
        self.buffer = ReplayBuffer(self.spec.obs_dim, self.spec.action_dim, capacity=4096)

    def _build(self) -> None:
        """Seeded first: the models' initial weights come from torch's generator."""
        self.gens = Generators.seeded(self.config.seed, self.device, self.env)
        self.parts = build_run(self.config, self.spec, self.device, self.gens)

    def close(self) -> None:
        for env in (self.env, *self.eval_envs):
            self.source.close(env)
        if self.board is not None:
            self.board.close()

    def go(self, checkpoints: Iterator[Checkpoint], info: RunInfo) -> RunResult:
        """Run from the first of `checkpoints` that fits the run (newest first; none: a
        fresh run); how the session ends goes into run.json (`info`)."""
        try:
            with StopSignals() as signals:
                self.signals = signals
                self._start(checkpoints)
                if info.entry["kind"] == "resume":  # a checkpoint that did not fit passed over
                    info.update(resumed_after=self.last_done)
                first = 0 if self.last_done is None else self.last_done + 1
                bar = tqdm(range(first, self.config.iterations), initial=first,
                           total=self.config.iterations,
                           desc=f"{self.config.env} {self.config.planner.name}",
                           disable=not self.progress)
                for it in bar:
                    self._iteration(it, bar)
                result = self._finish()
        except RunInterrupted as stop:
            stop.run_dir, stop.iteration = self.dir, self.last_done
            self._draw_at_stop()
            info.end(stop.stopped())
            raise
        except BaseException as exc:
            self._draw_at_stop()
            info.end(f"failed: {type(exc).__name__}: {first_line(exc)}")
            raise
        info.end("completed")
        return result

    def _start(self, checkpoints: Iterator[Checkpoint]) -> None:
        """Put the newest checkpoint that fits back into every part and generator (one
        that does not is passed over with a warning, the parts built afresh), or collect
        the random data (a fresh run); check the reward and termination functions the run
        plans with on that data (envs/check.py); (re)write the logs so they hold exactly
        the checkpointed iterations."""
        restored = False
        for checkpoint in checkpoints:
            # known before it is restored, so that a stop while it loads names the
            # iteration it resumes after, not "before the first checkpoint"
            self.last_done = checkpoint.iteration
            try:
                self._restore(checkpoint)
                restored = True
                break
            except CheckpointError as exc:
                self.warn(f"{exc}; trying the previous checkpoint")
                self._build()
                self.last_done = None
        if not restored and self.last_done is None and self.dir.joinpath(CHECKPOINTS).is_dir() \
                and list_checkpoints(self.dir / CHECKPOINTS):
            raise CheckpointError(f"no checkpoint in {self.dir / CHECKPOINTS} fits this run "
                                  "(each one is named above)")
        if not restored:
            random_eps = collect_random(self.env, self.buffer, self.config.random_trajectories,
                                        self.config.seed, self.progress, self._counting_warn())
            self.echo(f"random data: {len(self.buffer)} transitions, mean return "
                      f"{np.mean([e.ret for e in random_eps]):.1f}")
        m = self.config.model  # the functions planned with, against the env's own values
        check_functions(self.config.env, m.reward, m.termination,
                        self.buffer.tensors(self.device), self.warn,
                        "recorded" if restored else "random")
        self.metrics = MetricsLog(self.dir / METRICS, self.dir, self.history.rows)
        self._episodes = record.EpisodesLog(self.dir / EPISODES, self.history.episode_rows,
                                            self.dir)
        rows = self.history.rows  # a resumed session's events start after its checkpoint
        self.board = open_log(self.config.tensorboard, self.dir / TENSORBOARD, self.dir,
                              int(rows[-1]["env_steps"]) if rows else None)
        if self.board is not None:
            _log.debug(f"tensorboard: {self.board.path}")
        elif self.config.tensorboard == "auto":
            _log.debug(f"tensorboard: no event files ({why_not()})")

    def _termination(self) -> tuple[Any, Optimizer] | None:
        """The learned termination model and its optimizer, where the run has one."""
        part = self.parts.termination_fit
        return None if part is None else (part.model, part.optimizer)

    def _restore(self, checkpoint: Checkpoint) -> None:
        parts = self.parts
        self.history = restore(checkpoint, self.config, self.device,
                               (parts.dynamics, parts.reward), checkpoint_optimizers(parts.fit),
                               self.gens, (self.spec.obs_dim, self.spec.action_dim),
                               self._termination())
        parts.plan_with_termination(self.config)
        self.buffer, self.last_done = checkpoint.buffer, checkpoint.iteration
        self._wall_before = float(self.history.counters["wall_s"])

    def _counting_warn(self) -> Warn:
        def warn(message: str) -> None:
            self.history.counters["dropped_random_episodes"] += 1
            self.warn(message)
        return warn

    def _wall_s(self) -> float:
        """The run's wall seconds so far, every session and its random data included."""
        return self._wall_before + time.perf_counter() - self._session_start

    def _eval_before(self) -> float:
        """The evaluation seconds of the iterations logged so far (a row from before
        evaluation was timed counts none)."""
        return sum(float(r.get("time/eval_s", 0.0)) for r in self.history.rows)

    # -- one iteration, in its steps ---------------------------------------------------

    def _iteration(self, it: int, bar: tqdm) -> None:
        t0 = time.perf_counter()
        fitted, data, split = self._fit(it)
        terminations = self._fit_termination(it, data, split)
        recording = self._records_video(it)
        played = self._act(recording)
        row = record.metrics_row(it, len(self.buffer), played, fitted,
                                 self.parts.agent.latency_ms())
        row.update(self._diagnose(it, played, terminations))
        eval_s = 0.0
        if self._evaluates(it):
            lengths: list[int] = []
            t_eval = time.perf_counter()
            returns = evaluate(self.eval_envs, self.parts.eval_agent, warn=self.warn,
                               lengths=lengths)
            eval_s = time.perf_counter() - t_eval
            self._eval_session_s += eval_s
            row.update(record.eval_columns(returns, lengths))
        row["time/iteration_s"] = time.perf_counter() - t0
        row["time/eval_s"] = eval_s
        row["time/wall_s"] = self._wall_s() - eval_s - self._eval_before()
        kept = [ep for ep in played if ep.dropped is None]
        self._checkpoint(it, row, [[it, k, ep.length, ep.ret, ep.predicted_return]
                                   for k, ep in enumerate(kept)])
        if recording and kept and kept[-1].frames:
            video = save_mp4(kept[-1].frames, self.dir / VIDEOS / f"iteration_{it:04d}.mp4",
                             fps=self.env.metadata.get("render_fps", 30), root=self.dir)
            _log.debug(f"video: {video}")
        record.report(self.echo, bar, row, kept, fitted)
        self._draw()

    def _fit(self, it: int) -> tuple[FitResult, Transitions, Split]:
        """Fit every model on all data so far; stop before a diverged model is used or
        saved; snapshot the new weights into the objectives. Returns the data as tensors
        and its split too, for the termination model."""
        split = self.buffer.split(self.config.model.valid_fraction, self.gens.split)
        data = self.buffer.tensors(self.device)
        fitted = fit(self.parts.fit, data, split, self.config.model.epochs, self.gens.fit,
                     self.progress)
        self._check_finite(it, fitted)
        for objective in self.parts.objectives():
            objective.refresh()
        self.parts.value_terminations(self.config, data.reward)
        return fitted, data, split

    def _fit_termination(self, it: int, data: Transitions, split: Split) -> tuple[float, float]:
        """Fit the learned termination model, where the run has one and the data hold a
        termination, on the same split, with a generator of its own (seeded per
        iteration); plan with it from then on. Its validation (precision, recall)."""
        part, model = self.parts.termination_fit, self.parts.termination
        if part is None or model is None or not self.buffer.terminated.any():
            return float("nan"), float("nan")
        generator = torch.Generator().manual_seed(self.config.seed + TERMINATION_SEED + it)
        fitted = fit([part], data, split, self.config.model.epochs, generator, self.progress)
        if not finite(fitted, (model,)):
            raise TrainingError(f"the termination model's fit diverged at iteration {it} "
                                f"(train loss {fitted.train['termination']:.3g}); stopped")
        self.parts.plan_with_termination(self.config)
        return diagnostics.termination_scores(model, data, split.valid)

    def _diagnose(self, it: int, played: list[Episode],
                  terminations: tuple[float, float]) -> dict[str, float]:
        """The iteration's model/ and planner/ diagnostics (diagnostics.py) on the
        episodes it has just played, with particles of their own."""
        kept = [ep for ep in played if ep.dropped is None]
        segments = [diagnostics.Segment(lo, hi, np.asarray(ep.planned)) for ep, (lo, hi)
                    in zip(kept, row_ranges(kept, len(self.buffer)), strict=True)]
        generator = torch.Generator(device=self.device).manual_seed(
            self.config.seed + TERMINATION_SEED + 1 + it)
        dynamics = planning_dynamics(self.config, self.parts.dynamics, generator)
        return diagnostics.diagnose(dynamics, self.parts.objective.reward, self.buffer, segments,
                                    self.config.planner.horizon, self.device, terminations)

    def _records_video(self, it: int) -> bool:
        """Iteration 0 (the first planned episodes), every `video_every`-th after it, and
        the last."""
        every = self.config.video_every
        return self.video and (it % every == 0 or it == self.config.iterations - 1)

    def _act(self, recording: bool) -> list[Episode]:
        """Whole planned episodes until `steps_per_iteration` transitions were added;
        each kept episode gets the reward model's view of its return."""
        agent = self.parts.agent
        agent.reset_timing()
        played = run_episodes(self.env, agent, self.buffer, self.config.steps_per_iteration,
                              recording, self.progress, warn=self.warn)
        record.predict_returns(self.parts.objective.reward, self.buffer,
                               [ep for ep in played if ep.dropped is None], self.device)
        return played

    def _evaluates(self, it: int) -> bool:
        every = self.config.eval_every
        return bool(self.eval_envs) and ((it + 1) % every == 0
                                         or it == self.config.iterations - 1)

    def _checkpoint(self, it: int, row: dict[str, Any], episode_rows: list[list[Any]]) -> None:
        """The iteration into the history, the checkpoint and the logs, all or none: a stop
        signal waits until they agree."""
        with self.signals.deferred():
            history = self.history
            history.rows.append(row)
            history.episode_rows.extend(episode_rows)
            history.plan_ms.extend(1e3 * s for s in self.parts.agent.plan_seconds)
            history.counters["wall_s"] = self._wall_s()
            parts = self.parts
            json_part, tensors = capture(self.config, self.device,
                                         (parts.dynamics, parts.reward),
                                         checkpoint_optimizers(parts.fit), self.gens, history,
                                         self._termination())
            try:
                save_checkpoint(self.dir / CHECKPOINTS, it, json_part, tensors, self.buffer,
                                self.keep, root=self.dir)
            except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
                    first_line(exc)
                raise TrainingError(f"could not write the checkpoint of iteration {it} in "
                                    f"{self.dir / CHECKPOINTS}: {reason}; the previous "
                                    "checkpoints are kept") from None
            self.last_done = it
            self.metrics.append(row)
            self._episodes.append(episode_rows)
            if self.board is not None:
                self.board.append(row)
        _log.debug(f"checkpoint: {self.dir / CHECKPOINTS / checkpoint_name(it)}")

    def _check_finite(self, it: int, fitted: FitResult) -> None:
        """Stop before a diverged model is used or saved: the last checkpoint stays the
        last good one."""
        if finite(fitted, (self.parts.dynamics, self.parts.reward)):
            return
        last = ("no checkpoint was written yet" if self.last_done is None else
                "the last good checkpoint is "
                f"{self.dir / CHECKPOINTS / checkpoint_name(self.last_done)}")
        lr = "--ensemble-lr" if self.config.model.dynamics != "mlp" else "--lr"
        raise TrainingError(
            f"model fit diverged at iteration {it} (train loss dynamics "
            f"{fitted.train['dynamics']:.3g}, reward "
            f"{fitted.train.get('reward', float('nan')):.3g}); "
            f"stopped, {last} (try a smaller {lr})")

    def _termination_used(self) -> str:
        """What the planner stopped its returns at in the end: none, learned, known (or
        the function the run was given)."""
        used = self.parts.objective.termination
        if used is None:
            return "none"
        if used is self.parts.termination:
            return "learned"
        return "known" if self.config.model.termination == "auto" else \
            self.config.model.termination

    def _draw(self, now: bool = False) -> None:
        """Redraw the figures from every row so far (figures.py) once REDRAW_S seconds
        without evaluation have passed since the last redraw (the first: since the session
        began), and with `now` (the run's end or stop) whatever rows they lack. A redraw
        takes a few tenths of a second, as much as a short iteration plans: so it costs at
        most that per REDRAW_S of training however often the run evaluates, and a run that
        ends within REDRAW_S draws once, at its end."""
        rows = self.history.rows
        if self._drawn == len(rows) or not rows:
            return
        t0 = time.perf_counter()
        clock = t0 - self._eval_session_s
        if not now and clock - self._drawn_at < REDRAW_S:
            return
        self.figures.draw(record.columns(rows), self.dir / PLOTS, self.dir)
        self._drawn, self._drawn_at = len(rows), clock
        _log.debug(f"figures redrawn in {self.dir / PLOTS} ({time.perf_counter() - t0:.2f} s)")

    def _draw_at_stop(self) -> None:
        """The figures of a stopped or failed run, up to its last logged iteration; a
        figure that cannot be drawn does not hide why the run stopped."""
        try:
            if hasattr(self, "metrics"):  # the logs were opened
                self._draw(now=True)
        except Exception as exc:
            _log.debug(f"figures not redrawn at the stop: {first_line(exc)}")

    def _finish(self) -> RunResult:
        config = self.config
        self._draw(now=True)  # a resumed run with no iteration left to run draws here too
        summary = record.summary(config, self.history, len(self.buffer), self._wall_s(),
                                 self.device, self.parts.objective.kernel,
                                 self._termination_used())
        write_text(self.dir / SUMMARY, json.dumps(summary, indent=2) + "\n", self.dir)
        self.echo(f"run folder: {self.dir}")
        return RunResult(run_dir=self.dir, summary=summary)
