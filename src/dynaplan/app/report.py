"""`dynaplan report SWEEP_DIR`: figures and tables over seeds from every run folder below.

A run folder is any folder holding config.json and metrics.csv (a sweep's trials, a
compare's runs, single `dynaplan train` runs). Runs are grouped by environment, then by
method: the preset when the config names one, else the planner, followed by every other
option (seed aside) that differs between the runs of that preset or planner. Returns are
`eval/return` when every run of the environment evaluated, else `train/return`.

Written beside each other (default: into SWEEP_DIR): report.md, one figure per
environment (`return_<env>.png`: mean return vs environment steps with a 95% bootstrap
band over seeds), per_seed.csv (one row per run) and curves.csv (one row per iteration of
each run). Every figure's footer names the command and the git commit behind it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np

from dynaplan.app.report_runs import (
    RESAMPLES,
    Run,
    aggregate,
    find_runs,
    label_methods,
    seconds_to,
    steps_to,
)
from dynaplan.app.sweep_spec import SWEEP_FILE
from dynaplan.errors import ConfigError
from dynaplan.runs import code_version
from dynaplan.safe_files import make_dirs, write_text
from dynaplan.stats import bootstrap_ci, iqm

# return an environment counts as solved at; other ids use gymnasium's reward_threshold
THRESHOLDS = {"Pendulum-v1": -200.0, "InvertedPendulum-v5": 1000.0,
              "MountainCarContinuous-v0": 90.0}


def parse_thresholds(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        env, sep, value = item.rpartition("=")
        try:
            out[env] = float(value)
        except ValueError:
            env = ""
        if not sep or not env:
            raise ConfigError(f"--threshold takes ENV=VALUE (e.g. Pendulum-v1=-200), got "
                              f"{item!r}")
    return out


def default_threshold(env: str) -> float | None:
    if env in THRESHOLDS:
        return THRESHOLDS[env]
    try:
        import gymnasium as gym

        return gym.spec(env).reward_threshold
    except Exception:  # an id this gymnasium does not know: no default
        return None


def write_report(root: Path, out: Path, thresholds: dict[str, float], command: str) -> Path:
    runs, skipped = find_runs(root)
    if not runs:
        raise ConfigError(f"no run folders (config.json and metrics.csv) under {root}")
    envs: dict[str, list[Run]] = {}
    for run in runs:
        envs.setdefault(str(run.config["env"]), []).append(run)
    for env in thresholds:
        if env not in envs:
            raise ConfigError(f"--threshold {env}: no runs of {env} under {root} (found "
                              f"{', '.join(envs)})")
    for members in envs.values():
        label_methods(members)
    make_dirs(out, out)
    commit = code_version()
    footer = f"{command}  |  commit {commit}"
    made_by = _sweep_record(root)
    if made_by:
        footer += f"\ntrials: {made_by.get('command')}  |  commit {made_by.get('commit')}"
    lines = [f"# Report: {root}", "",
             f"Made by `{command}` at commit `{commit}` on {time.strftime('%Y-%m-%d %H:%M')}"
             + (f"; trials by `{made_by.get('command')}` at commit `{made_by.get('commit')}`"
                if made_by else "") + f". {len(runs)} runs in {len(envs)} environment(s).", "",
             "Final return: the return of each run's last iteration. IQM: interquartile "
             "mean over seeds (mean of the middle 50%); CI: 95% percentile bootstrap over "
             f"seeds ({RESAMPLES} resamples, seeded). Curves: mean over seeds with its 95% "
             "bootstrap band, against environment steps (random data included). Steps to "
             "threshold: environment steps until the return first reaches it; median and "
             "worst over seeds, counting a seed that never reached it as never. Seconds to "
             "threshold: the run's wall seconds without evaluation (`time/wall_s`, random "
             "data included, the process's start not) at that iteration, median and worst. "
             "Plan ms: median over seeds of each run's median per-iteration p50 planning "
             "time per step.", ""]
    per_seed, curve_rows = [], []
    for env, members in envs.items():
        metric = ("eval/return" if all(np.isfinite(r.returns["eval/return"]).any()
                                       for r in members) else "train/return")
        threshold = thresholds.get(env, default_threshold(env))
        methods: dict[str, list[Run]] = {}
        for run in sorted(members, key=lambda r: (r.method, str(r.seed), str(r.path))):
            methods.setdefault(run.method, []).append(run)
        figure = out / f"return_{re.sub(r'[^A-Za-z0-9._-]', '_', env)}.png"
        _plot(env, metric, methods, threshold, footer, figure)
        lines += [f"## {env}", "", f"![{env}: {metric}]({figure.name})", "",
                  f"Return: `{metric}`. Threshold: "
                  + (f"{threshold:g}" if threshold is not None else
                     "none (give one with --threshold ENV=VALUE)") + ".", "",
                  "| method | seeds | env steps | final return IQM | 95% CI | mean | "
                  "steps to threshold: median, worst (reached) | seconds to threshold: "
                  "median, worst | plan ms/step |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for method, group in methods.items():
            finals = np.asarray([r.curve(metric)[1][-1] if r.curve(metric)[1].size
                                 else math.nan for r in group])
            steps = [r.curve(metric)[0][-1] if r.curve(metric)[0].size else math.nan
                     for r in group]
            reach = [steps_to(*r.curve(metric), threshold) if threshold is not None
                     else math.nan for r in group]
            seconds = [seconds_to(r, metric, threshold) if threshold is not None
                       else math.nan for r in group]
            ok = finals[np.isfinite(finals)]
            if ok.size:
                value, low, high = bootstrap_ci(ok, iqm, resamples=RESAMPLES)
                cells = [f"{value:.1f}", f"[{low:.1f}, {high:.1f}]", f"{ok.mean():.1f}"]
            else:
                cells = ["-", "-", "-"]
            lines.append(f"| {method} | {len(group)} | {_span(steps)} | " + " | ".join(cells)
                         + f" | {_reach(reach, threshold)} | {_seconds(seconds, threshold)} | "
                         f"{np.nanmedian([r.plan_ms for r in group]):.2f} |")
            for run, final, step, hit, secs in zip(group, finals, steps, reach, seconds):
                rel = str(run.path.relative_to(root)) if run.path != root else "."
                per_seed.append([env, method, run.seed, rel, len(run.iteration), _int(step),
                                 metric, final, _int(hit),
                                 f"{secs:.2f}" if math.isfinite(secs) else "", run.plan_ms])
                curve_rows += [[env, method, run.seed, rel, int(i), _int(s), metric, y]
                               for i, s, y in zip(run.iteration, run.env_steps,
                                                  run.returns[metric])]
        lines.append("")
    if skipped:
        lines += ["Skipped folders:", ""] + [f"- {note}" for note in skipped] + [""]
    _csv(out, "per_seed.csv", ["env", "method", "seed", "run", "iterations", "env_steps",
                                "metric", "final_return", "steps_to_threshold",
                                "seconds_to_threshold", "plan_ms_p50"], per_seed)
    _csv(out, "curves.csv", ["env", "method", "seed", "run", "iteration", "env_steps",
                              "metric", "return"], curve_rows)
    lines += ["Per-seed numbers: [per_seed.csv](per_seed.csv) (final returns, steps to "
              "threshold, planning ms) and [curves.csv](curves.csv) (every iteration).", ""]
    path = out / "report.md"
    write_text(path, "\n".join(lines), out)
    return path


def _int(value: float) -> int | str:
    """A step count for a CSV cell ('' when there is none)."""
    return int(value) if math.isfinite(value) else ""


def _span(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    lo, hi = int(min(finite)), int(max(finite))
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _reach(steps: list[float], threshold: float | None) -> str:
    """Median and worst steps to the threshold over seeds, and how many reached it."""
    if threshold is None:
        return "-"
    reached = sum(math.isfinite(s) for s in steps)
    return f"{_value(float(np.median(steps)), '.0f')}, {_value(max(steps), '.0f')} " \
           f"({reached}/{len(steps)})"


def _seconds(seconds: list[float], threshold: float | None) -> str:
    """Median and worst seconds to the threshold; '-' where a run has no time/wall_s."""
    if threshold is None or any(math.isnan(s) for s in seconds):
        return "-"
    return f"{_value(float(np.median(seconds)), '.1f')}, {_value(max(seconds), '.1f')}"


def _value(v: float, fmt: str) -> str:
    return format(v, fmt) if math.isfinite(v) else "never"


def _sweep_record(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / SWEEP_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _csv(out: Path, name: str, header: list[str], rows: list[list[Any]]) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    write_text(out / name, text.getvalue(), out)


def _plot(env: str, metric: str, methods: dict[str, list[Run]], threshold: float | None,
          footer: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    from dynaplan.plots import save

    fig, ax = plt.subplots(figsize=(7, 4.8))
    for method, group in methods.items():
        steps, mean, low, high = aggregate(group, metric)
        if not steps.size:
            continue
        marker = "." if steps.size < 30 else None
        (line,) = ax.plot(steps, mean, marker=marker, label=f"{method} ({len(group)} seeds)")
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    if threshold is not None:
        ax.axhline(threshold, color="gray", linestyle="--", linewidth=1,
                   label=f"threshold {threshold:g}")
    ax.set_title(f"{env}: {metric}, mean and 95% bootstrap CI over seeds")
    ax.set_xlabel("Environment steps (random data included)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, footer, fontsize=6.5, color="dimgray", va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.03 * (footer.count("\n") + 1) + 0.01, 1, 1))
    save(fig, path, path.parent)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="figures and tables over seeds from a folder of runs",
                       description="Find every run folder under SWEEP_DIR; per environment "
                                   "a figure of return vs environment steps (mean, 95% "
                                   "bootstrap band over seeds) and a table of final returns "
                                   "(IQM, 95% CI), steps to threshold and planning ms.")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a sweep folder or any folder of runs")
    p.add_argument("--threshold", metavar="ENV=VALUE", action="append", default=[],
                   help="return counted as reached (repeatable; defaults: Pendulum-v1=-200, "
                        "InvertedPendulum-v5=1000, else gymnasium's reward_threshold)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for report.md, figures and CSVs (default: SWEEP_DIR)")


def run(args: argparse.Namespace) -> int:
    words = ["dynaplan", "report", args.sweep_dir]
    for item in args.threshold:
        words += ["--threshold", item]
    words += ["--out", args.out] if args.out else []
    root = Path(args.sweep_dir)
    print(write_report(root, Path(args.out) if args.out else root,
                       parse_thresholds(args.threshold), shlex.join(words)))
    return 0
