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

import argparse
import itertools
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dynaplan.app.sweep_run import Job, outcome, run_in_process, run_on_ray
from dynaplan.app.sweep_spec import (
    SWEEP_FILE,
    check_environments,
    expand,
    read_json,
    read_spec,
    trial_state,
)
from dynaplan.config import load_config_file, to_dict
from dynaplan.errors import ConfigError
from dynaplan.interrupt import RunInterrupted
from dynaplan.runs import SUMMARY, code_version
from dynaplan.safe_files import make_dirs, write_text


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
    make_dirs(out, out)
    record: dict[str, Any] = {
        "command": opts.command, "commit": code_version(), "spec_file": str(spec_path),
        "spec": load_config_file(spec_path), "out": str(out), "executor": "in-process",
        "started": _now(), "finished": None,
        "trials": [{"name": t.name, "axes": t.axes, "state": states[t.name]} for t in trials]}
    by_name: dict[str, dict[str, Any]] = {r["name"]: r for r in record["trials"]}
    _write(out, record)
    jobs = [Job(t.name, str((out / t.name).resolve()), to_dict(t.config),
                opts.keep_checkpoints) for t in trials if states[t.name] != "finished"]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(trials), unit="trial", desc="sweep", disable=not opts.progress)
    count = itertools.count(1)
    for t in trials:
        if states[t.name] == "finished":
            summary = read_json(out / t.name / SUMMARY) or {}
            by_name[t.name].update(status="skipped", **outcome(summary))
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
    write_text(out / SWEEP_FILE, json.dumps(record, indent=2, default=str) + "\n", out)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of train runs from a YAML file (on Ray when "
                                     "installed)",
                       description="Run every combination of a YAML spec's list values (keys: "
                                   "train flags; `out`: the sweep folder), one run folder per "
                                   "trial. Run again to skip finished trials and resume "
                                   "interrupted ones.")
    p.add_argument("spec", metavar="SPEC", help="YAML file: train flags as keys, a list is a "
                                                "grid axis, a scalar is fixed")
    p.add_argument("--out", metavar="DIR",
                   help="sweep folder (default: the spec's out, else runs/sweep__<spec name>)")
    p.add_argument("--address", metavar="ADDR",
                   help="join this Ray cluster (default: start a local Ray instance)")
    p.add_argument("--max-concurrent", metavar="N", type=int,
                   help="trials at once (default: the Ray cluster's CPUs); each runs "
                        "CPUs / N torch threads")
    p.add_argument("--no-ray", action="store_true",
                   help="run the trials one after another in this process")
    p.add_argument("--keep-checkpoints", metavar="K", type=int, default=2,
                   help="keep the newest K checkpoints of each trial (default: 2)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the spec and list the trials' folders; run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    words = ["dynaplan", "sweep", args.spec]
    for flag, value in (("--out", args.out), ("--address", args.address),
                        ("--max-concurrent", args.max_concurrent)):
        words += [flag, str(value)] if value is not None else []
    words += ["--no-ray"] if args.no_ray else []
    options = SweepOptions(out=Path(args.out) if args.out else None, address=args.address,
                           max_concurrent=args.max_concurrent, use_ray=not args.no_ray,
                           keep_checkpoints=args.keep_checkpoints, progress=not args.quiet,
                           dry_run=args.dry_run, command=shlex.join(words))
    try:
        sweep(Path(args.spec), options, echo=tqdm.write,
              notice=lambda line: print(f"dynaplan: {line}", file=sys.stderr))
    except (RunInterrupted, KeyboardInterrupt) as stop:
        print("dynaplan: sweep stopped; run the same command again to skip the finished "
              "trials and resume the others from their last checkpoints", file=sys.stderr)
        return stop.exit_status if isinstance(stop, RunInterrupted) else 130
    return 0
