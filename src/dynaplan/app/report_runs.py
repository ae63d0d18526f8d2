"""The runs a report reads: every run folder below a root, each with its config (as option
values), its return curves and planning time, grouped into methods; the mean curve of a
method with its bootstrap band."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dynaplan.config import from_dict, to_flat
from dynaplan.errors import ConfigError
from dynaplan.stats import bootstrap_ci

RESAMPLES = 2000


@dataclass
class Run:
    path: Path
    config: dict[str, Any]
    iteration: np.ndarray  # [T]
    env_steps: np.ndarray  # [T]
    returns: dict[str, np.ndarray]  # "train/return", "eval/return": [T]
    plan_ms: float  # median over iterations of time/plan_ms_p50
    wall_s: np.ndarray | None = None  # [T] time/wall_s: wall seconds without evaluation
    method: str = ""

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    def curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(env_steps, return) of the iterations where `metric` is finite."""
        y = self.returns[metric]
        ok = np.isfinite(y)
        return self.env_steps[ok], y[ok]


def find_runs(root: Path) -> tuple[list[Run], list[str]]:
    """Every run folder below `root` (itself included), and a note per folder skipped."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder")
    runs, skipped = [], []
    for config_path in sorted(root.rglob("config.json")):
        folder = config_path.parent
        if not (folder / "metrics.csv").is_file():
            continue
        try:
            config = json.loads(config_path.read_text())
            with open(folder / "metrics.csv", newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, ValueError) as exc:
            skipped.append(f"{folder}: unreadable ({exc})")
            continue
        try:
            config = to_flat(from_dict(config, source=str(config_path)))
        except ConfigError as exc:
            skipped.append(f"{folder}: {exc}")
            continue
        if not rows:
            skipped.append(f"{folder}: no finished iteration yet")
            continue

        def column(name: str, rows: list[dict] = rows) -> np.ndarray:
            return np.asarray([float(r.get(name) or "nan") for r in rows])

        plan = column("time/plan_ms_p50")
        runs.append(Run(folder, config, column("iteration"), column("env_steps"),
                        {k: column(k) for k in ("train/return", "eval/return")},
                        float(np.nanmedian(plan)) if np.isfinite(plan).any() else math.nan,
                        column("time/wall_s")))
    return runs, skipped


def label_methods(runs: list[Run]) -> None:
    """Set each run's method: preset or planner, plus the options (seed aside) that
    differ between the runs sharing that preset or planner."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(str(run.config.get("preset") or run.config.get("planner")), [])
        groups[str(run.config.get("preset") or run.config.get("planner"))].append(run)
    for base, members in groups.items():
        keys = list(dict.fromkeys(k for r in members for k in r.config))
        varying = [k for k in keys if k != "seed" and
                   len({json.dumps(r.config.get(k)) for r in members}) > 1]
        for run in members:
            run.method = " ".join([base, *(f"{k}={run.config.get(k)}" for k in varying)])


def steps_to(x: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """Environment steps at the first iteration whose return reaches `threshold`."""
    hit = np.flatnonzero(y >= threshold)
    return float(x[hit[0]]) if hit.size else math.inf


def seconds_to(run: Run, metric: str, threshold: float) -> float:
    """The run's wall seconds without evaluation (time/wall_s) at the end of the first
    iteration whose `metric` reaches `threshold`: inf where none does, NaN for a run
    written before dynaplan logged time/wall_s."""
    y = run.returns[metric]
    wall = run.wall_s if run.wall_s is not None else np.full_like(y, math.nan)
    ok = np.isfinite(y)
    return steps_to(wall[ok], y[ok], threshold)  # the same first iteration, its seconds


def aggregate(runs: list[Run], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """Mean return over the runs with its 95% bootstrap band, on the environment steps
    every run has reached; each run holds its last return between its own iterations.
    Returns (steps [T], mean [T], low [T], high [T])."""
    curves = [r.curve(metric) for r in runs]
    lo, hi = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    held = np.stack([y[np.searchsorted(x, grid, side="right") - 1] for x, y in curves])
    mean, low, high = bootstrap_ci(held, resamples=RESAMPLES) if grid.size else (grid,) * 3
    return grid, mean, low, high
