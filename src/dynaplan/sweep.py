"""`dynaplan sweep SPEC.yaml`: a grid of `dynaplan train` runs, on Ray when it is installed.

The spec is a mapping whose keys are `dynaplan train` flags (dashes or underscores): a
list is a grid axis, a scalar is fixed, and `out` names the sweep folder. Every trial is
an ordinary run folder `<sweep>/<env>__<preset or planner>[__<axis>-<value>...]__s<seed>`,
so plot, eval, resume and report work on it. Every trial's config is built and checked
(and every environment created once) before the first trial starts.

Running the same sweep again skips finished trials (summary.json written and the spec's
iterations reached), resumes interrupted ones from their last checkpoint, and starts
again those that stopped before their first checkpoint (`loop.resume` does both). With
Ray, each trial is one task that reserves as many CPUs as it runs torch threads, at
most `max_concurrent` in flight; without Ray, trials run one after another in-process.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dynaplan.config import TrainConfig, load_config_file
from dynaplan.errors import ConfigError
from dynaplan.interrupt import SIGNALS, RunInterrupted
from dynaplan.presets import config_from_values

# name parts that always appear, in this order; the other axes go between method and seed
_FIRST = ("env", "preset", "planner")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class Trial:
    """One point of the grid: its folder name, its axis values, its whole config."""

    name: str
    axes: dict[str, Any]  # this trial's value of each grid axis
    config: TrainConfig


@dataclass(frozen=True)
class Job:
    """What a worker needs to run one trial: plain data, so Ray can ship it."""

    name: str
    run_dir: str
    config: dict[str, Any]
    keep_checkpoints: int = 2
    threads: int | None = None  # torch threads in the worker (None: leave as they are)


def read_spec(path: Path) -> tuple[dict[str, Any], str | None]:
    """The spec's train values (keys with underscores) and its `out`, or a ConfigError
    naming the first key that is not a train flag or whose value is not a scalar or a
    list of distinct scalars."""
    data = load_config_file(path)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    out: str | None = None
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name == "out":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"sweep spec {path}: out must be a folder name, got {value!r}")
            out = value
            continue
        if name not in known:
            raise ConfigError(f"sweep spec {path}: unknown key {key!r} (not a dynaplan train "
                              "flag)")
        if name in values:
            raise ConfigError(f"sweep spec {path}: key {key!r} is given twice")
        if isinstance(value, list):
            if not value:
                raise ConfigError(f"sweep spec {path}: {key} is an empty list (no trials)")
            if any(isinstance(v, (list, dict)) for v in value):
                raise ConfigError(f"sweep spec {path}: {key} must list plain values")
            if len({json.dumps(v) for v in value}) != len(value):
                raise ConfigError(f"sweep spec {path}: {key} lists a value twice")
        elif isinstance(value, dict):
            raise ConfigError(f"sweep spec {path}: {key} must be a value or a list of values")
        values[name] = value
    return values, out


def _part(value: Any) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return _UNSAFE.sub("_", text)


def expand(values: dict[str, Any], source: str = "sweep spec") -> list[Trial]:
    """Every combination of the list-valued keys, env outermost and seed innermost; each
    trial's config is built (and so validated) here, so a bad value in any trial is
    refused before the first one runs."""
    axes = [k for k, v in values.items() if isinstance(v, list)]
    order = ([k for k in _FIRST if k in axes] + [k for k in axes if k not in _FIRST
                                                  and k != "seed"]
             + (["seed"] if "seed" in axes else []))
    fixed = {k: v for k, v in values.items() if k not in axes}
    method = "preset" if "preset" in values else "planner"  # named by the preset if any
    trials, seen = [], {}
    for combo in itertools.product(*(values[k] for k in order)):
        point = dict(zip(order, combo))
        config = config_from_values({**fixed, **point}, f"{source}, trial {_describe(point)}")
        parts = [config.env, point.get("preset", fixed.get("preset", config.planner))]
        parts += [f"{k.replace('_', '-')}-{point[k]}" for k in order
                  if k not in ("env", "seed", method)]
        parts.append(f"s{config.seed}")
        name = "__".join(_part(p) for p in parts)
        if name in seen:
            raise ConfigError(f"{source}: trials {_describe(seen[name])} and "
                              f"{_describe(point)} would share the folder {name}")
        seen[name] = point
        trials.append(Trial(name=name, axes=point, config=config))
    return trials


def _describe(point: dict[str, Any]) -> str:
    return " ".join(f"{k.replace('_', '-')}={v}" for k, v in point.items()) or "(one trial)"


def check_environments(trials: list[Trial]) -> None:
    """Create each environment once (and look up known rewards), so a bad env id or a
    missing package is refused before any trial starts."""
    from dynaplan.envs import make_env, planning_reward

    for env_id in dict.fromkeys(t.config.env for t in trials):
        env, _ = make_env(env_id)
        env.close()
    for trial in trials:
        if trial.config.reward != "learned":
            planning_reward(trial.config.env, trial.config.reward)


# -- which trials are left -----------------------------------------------------------------

def trial_state(trial: Trial, run_dir: Path) -> str:
    """'new', 'finished' or 'unfinished'; a folder holding a run with other options
    than the trial's (iterations aside) is refused."""
    from dynaplan.checkpoint import list_checkpoints
    from dynaplan.evaluate import load_run_config

    if not (run_dir / "config.json").is_file():
        return "new"
    saved = load_run_config(run_dir)
    ours = dataclasses.replace(trial.config, iterations=saved.iterations)
    if ours != saved:
        differ = [k for k, v in ours.to_dict().items() if saved.to_dict()[k] != v]
        raise ConfigError(f"{run_dir} holds a run with other options ({differ[0]}: "
                          f"{saved.to_dict()[differ[0]]!r}, the spec gives "
                          f"{ours.to_dict()[differ[0]]!r}); use another --out")
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    done = int(checkpoints[-1].name.split("_")[1]) + 1 if checkpoints else 0
    if done > trial.config.iterations:
        raise ConfigError(f"{run_dir} has already run {done} iterations; the spec's "
                          f"iterations must be at least {done}")
    summary = _read_json(run_dir / "summary.json")
    if summary and summary.get("iterations", 0) >= trial.config.iterations:
        return "finished"
    return "unfinished"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- one trial (runs in a Ray worker or in this process) -----------------------------------

def run_trial(job: Job) -> dict[str, Any]:
    """Train the trial into job.run_dir, or resume it when the folder holds its config
    (from its last checkpoint, or from the start when it has none). Never raises for a
    failed run: the result's status says 'failed' and why (a stop signal does raise)."""
    import torch

    from dynaplan.checkpoint import list_checkpoints
    from dynaplan.loop import resume, train

    if job.threads is not None:
        torch.set_num_threads(job.threads)
        os.environ["OMP_NUM_THREADS"] = str(job.threads)
    started = time.time()
    result: dict[str, Any] = {"name": job.name, "pid": os.getpid(), "started": started,
                              "threads": torch.get_num_threads()}
    run_dir = Path(job.run_dir)
    quiet = dict(progress=False, echo=lambda *a, **k: None,
                 keep_checkpoints=job.keep_checkpoints)
    try:
        config = TrainConfig.from_dict(job.config)
        if (run_dir / "config.json").is_file():
            kept = list_checkpoints(run_dir / "checkpoints")
            result["message"] = (f"after iteration {int(kept[-1].name.split('_')[1])}"
                                 if kept else "from the start, no checkpoint yet")
            run = resume(run_dir, config, **quiet)
            result["status"] = "resumed"
        else:
            run = train(config, run_dir, **quiet)
            result["status"] = "trained"
        result.update(_outcome(run.summary))
    except Exception as exc:  # one failed trial does not stop the others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result.update(status="failed", message=f"{type(exc).__name__}: {first}")
    result["ended"] = time.time()
    result["seconds"] = result["ended"] - started
    return result


def _outcome(summary: dict[str, Any]) -> dict[str, Any]:
    evaluated = summary.get("final_eval_return") is not None
    return {"iterations": summary.get("iterations"), "env_steps": summary.get("env_steps"),
            "metric": "eval/return" if evaluated else "train/return",
            "final_return": summary.get("final_eval_return" if evaluated
                                        else "final_train_return")}


# -- executors -----------------------------------------------------------------------------

Done = Callable[[dict[str, Any]], None]


def run_in_process(jobs: list[Job], done: Done) -> None:
    for job in jobs:
        done(run_trial(job))


def run_on_ray(jobs: list[Job], done: Done, address: str | None, max_concurrent: int | None,
               describe: Callable[[str], None]) -> None:
    """Run the jobs as Ray tasks, at most `max_concurrent` in flight (default: the
    cluster's CPUs). Each task reserves `threads` CPUs and runs that many torch threads,
    threads = cluster CPUs // concurrency (capped at the largest node), so concurrent
    trials do not oversubscribe a node. Ctrl-C or SIGTERM cancels the tasks in flight
    (their last checkpoints stay) and shuts down a Ray instance started here."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"logging_level": "WARNING"}
        if address:
            options["address"] = address
        else:
            options["include_dashboard"] = False
        ray.init(**options)
    pending: dict[Any, Job] = {}
    try:
        total = int(ray.cluster_resources().get("CPU", 1))
        largest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]),
                      default=1)
        concurrency = max(1, min(max_concurrent or total, len(jobs)))
        threads = max(1, min(largest, total // concurrency))
        describe(f"ray ({address or 'local'}): {total} CPUs, {concurrency} "
                 f"trial{'s' * (concurrency > 1)} at once, {threads} torch "
                 f"thread{'s' * (threads > 1)} each")
        task = ray.remote(run_trial).options(num_cpus=threads)
        queue = [dataclasses.replace(j, threads=threads) for j in jobs]
        with _StopFlag() as stop:
            while queue or pending:
                while queue and len(pending) < concurrency:
                    job = queue.pop(0)
                    pending[task.remote(job)] = job
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        done(ray.get(ref))
                    except ray.exceptions.RayError as exc:
                        lines = str(exc).strip().splitlines()
                        done({"name": job.name, "status": "failed",
                              "message": f"ray: {lines[-1] if lines else type(exc).__name__}"})
                if stop.signum is not None:
                    raise RunInterrupted(stop.signum)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


class _StopFlag:
    """SIGINT and SIGTERM only note the signal (raising inside Ray's wait would break
    it); the loop checks the note between waits."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def _note(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


# -- the sweep -----------------------------------------------------------------------------

def code_version(where: Path | None = None) -> str:
    """`git rev-parse --short HEAD` of the code (with +dirty when the package's files
    differ from it), or 'unknown' outside git."""
    where = where or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where,
                              capture_output=True, text=True, timeout=10)
        if head.returncode:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=where,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


@dataclass
class SweepOptions:
    out: Path | None = None
    address: str | None = None
    max_concurrent: int | None = None
    use_ray: bool = True
    keep_checkpoints: int = 2
    progress: bool = True
    dry_run: bool = False
    command: str = "dynaplan sweep"


def sweep(spec_path: Path, opts: SweepOptions, echo: Callable[[str], None] = print,
          notice: Callable[[str], None] = print) -> dict[str, Any]:
    """Check every trial, then run the ones left; returns what sweep.json holds."""
    if opts.max_concurrent is not None and opts.max_concurrent < 1:
        raise ConfigError(f"--max-concurrent must be positive, got {opts.max_concurrent}")
    if opts.keep_checkpoints < 1:
        raise ConfigError(f"--keep-checkpoints must be positive, got {opts.keep_checkpoints}")
    if opts.address and not opts.use_ray:
        raise ConfigError("--address joins a Ray cluster; it cannot be combined with --no-ray")
    values, spec_out = read_spec(spec_path)
    trials = expand(values, f"sweep spec {spec_path}")
    out = opts.out or (Path(spec_out) if spec_out else Path("runs") / f"sweep__{spec_path.stem}")
    states = {t.name: trial_state(t, out / t.name) for t in trials}
    check_environments(trials)
    if opts.dry_run:
        for t in trials:
            echo(f"{out / t.name}  ({states[t.name]})")
        return {"trials": [{"name": t.name, "state": states[t.name]} for t in trials]}
    use_ray = opts.use_ray and _ray_available()
    if opts.use_ray and not use_ray:
        if opts.address:
            raise ConfigError("--address needs ray (pip install 'dynaplan[ray]')")
        notice("ray is not installed (pip install 'dynaplan[ray]'): running the trials one "
               "after another in this process")
    out.mkdir(parents=True, exist_ok=True)
    record = {"command": opts.command, "commit": code_version(), "spec_file": str(spec_path),
              "spec": load_config_file(spec_path), "out": str(out),
              "executor": "in-process", "started": _now(), "finished": None,
              "trials": [{"name": t.name, "axes": t.axes, "state": states[t.name]}
                         for t in trials]}
    by_name = {r["name"]: r for r in record["trials"]}
    _write(out, record)
    jobs = [Job(t.name, str((out / t.name).resolve()), t.config.to_dict(),
                opts.keep_checkpoints) for t in trials if states[t.name] != "finished"]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(trials), unit="trial", desc="sweep", disable=not opts.progress)
    count = itertools.count(1)
    for t in trials:
        if states[t.name] == "finished":
            summary = _read_json(out / t.name / "summary.json") or {}
            by_name[t.name].update(status="skipped", **_outcome(summary))
            echo(_line(next(count), len(trials), by_name[t.name]))
            bar.update()

    def done(result: dict[str, Any]) -> None:
        by_name[result["name"]].update(result)
        echo(_line(next(count), len(trials), by_name[result["name"]]))
        bar.update()
        _write(out, record)

    t0 = time.perf_counter()
    try:
        if jobs and use_ray:
            def describe(text: str) -> None:
                record["executor"] = text
                echo(f"{len(jobs)} of {len(trials)} trials to run on {text}")
            run_on_ray(jobs, done, opts.address, opts.max_concurrent, describe)
        elif jobs:
            echo(f"{len(jobs)} of {len(trials)} trials to run, one after another")
            run_in_process(jobs, done)
    finally:
        bar.close()
        record["finished"], record["wall_s"] = _now(), time.perf_counter() - t0
        _write(out, record)
    failed = [r for r in record["trials"] if r.get("status") == "failed"]
    if failed:
        from dynaplan.errors import TrainingError

        raise TrainingError(f"{len(failed)} of {len(trials)} trials failed (first: "
                            f"{failed[0]['name']}: {failed[0]['message']}); run the sweep "
                            "again to retry them")
    echo(f"sweep folder: {out} ({len(trials)} trials, {record['wall_s']:.1f} s); "
         f"dynaplan report {out}")
    return record


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _line(k: int, n: int, r: dict[str, Any]) -> str:
    head = f"[{k}/{n}] {r['name']}: "
    if r.get("status") == "failed":
        return head + f"FAILED: {r.get('message', '')}"
    what = {"skipped": "already finished, skipped",
            "resumed": f"resumed {r.get('message', '')}, finished",
            "trained": "finished"}[r["status"]]
    took = f" in {r['seconds']:.1f} s" if "seconds" in r else ""
    ret = r.get("final_return")
    shown = "nan" if ret is None else f"{ret:.1f}"
    return head + f"{what}{took}: {r['metric']} {shown} after {r['env_steps']} env steps"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _write(out: Path, record: dict[str, Any]) -> None:
    from dynaplan.checkpoint import atomic_write

    text = json.dumps(record, indent=2, default=str) + "\n"
    atomic_write(out / SWEEP_FILE, lambda fh: fh.write(text.encode()))
