"""Running a sweep's trials: one trial in a worker (a Ray task or this process), and the two
executors. Each trial is an ordinary `loop.train` or `loop.resume` of its run folder."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dynaplan.interrupt import SIGNALS, RunInterrupted


@dataclass(frozen=True)
class Job:
    """What a worker needs to run one trial: plain data, so Ray can ship it."""

    name: str
    run_dir: str
    config: dict[str, Any]
    keep_checkpoints: int = 2
    threads: int | None = None  # torch threads in the worker (None: leave as they are)


# -- one trial (runs in a Ray worker or in this process) -----------------------------------

def run_trial(job: Job) -> dict[str, Any]:
    """Train the trial into job.run_dir, or resume it when the folder holds its config
    (from its last checkpoint, or from the start when it has none). Never raises for a
    failed run: the result's status says 'failed' and why (a stop signal does raise).
    Warnings go to the worker's stderr (Ray shows them) where the command line's handler
    is not there to show them."""
    from dynaplan.app.output import setup_logging, shows_logs

    undo_logging = None if shows_logs() else setup_logging(quiet=True)
    try:
        return _run_trial(job)
    finally:
        if undo_logging is not None:
            undo_logging()


def _run_trial(job: Job) -> dict[str, Any]:
    import torch

    from dynaplan.checkpoint import list_checkpoints
    from dynaplan.config import from_dict
    from dynaplan.loop import resume, train

    if job.threads is not None:
        torch.set_num_threads(job.threads)
        os.environ["OMP_NUM_THREADS"] = str(job.threads)
    started = time.time()
    result: dict[str, Any] = {"name": job.name, "pid": os.getpid(), "started": started,
                              "threads": torch.get_num_threads()}
    run_dir = Path(job.run_dir)
    quiet: dict[str, Any] = dict(progress=False, echo=lambda *a, **k: None,
                                 keep_checkpoints=job.keep_checkpoints)
    try:
        config = from_dict(job.config)
        if (run_dir / "config.json").is_file():
            kept = list_checkpoints(run_dir / "checkpoints")
            result["message"] = (f"after iteration {int(kept[-1].name.split('_')[1])}"
                                 if kept else "from the start, no checkpoint yet")
            run = resume(run_dir, config, **quiet)
            result["status"] = "resumed"
        else:
            run = train(config, run_dir, **quiet)
            result["status"] = "trained"
        result.update(outcome(run.summary))
    except Exception as exc:  # one failed trial does not stop the others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result.update(status="failed", message=f"{type(exc).__name__}: {first}")
    result["ended"] = time.time()
    result["seconds"] = result["ended"] - started
    return result


def outcome(summary: dict[str, Any]) -> dict[str, Any]:
    """What the sweep's record keeps of a finished trial's summary."""
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
