"""Per-iteration metrics as CSV (namespaced columns) and their reading back."""

from __future__ import annotations

import csv
import math
from pathlib import Path

COLUMNS = (
    "iteration",
    "env_steps",
    "train/episodes",
    "train/dropped_episodes",
    "train/return",
    "train/predicted_return",
    "model/dynamics_train_loss",
    "model/dynamics_valid_loss",
    "model/reward_train_loss",
    "model/reward_valid_loss",
    "eval/return",
    "eval/return_min",
    "eval/return_max",
    "time/fit_s",
    "time/plan_ms_p50",
    "time/plan_ms_p99",
    "time/iteration_s",
)
TIMING_PREFIX = "time/"


class MetricsLog:
    """Appends one row per iteration to `metrics.csv`, flushed so a killed run keeps it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []
        with open(self.path, "w", newline="") as fh:
            csv.writer(fh).writerow(COLUMNS)

    def append(self, row: dict[str, float]) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown metric columns: {sorted(unknown)}")
        self.rows.append(row)
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c, float("nan"))) for c in COLUMNS])


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else repr(float(value))


def read_metrics(path: Path) -> dict[str, list[float]]:
    """Columns of a metrics.csv as float lists."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {key: [float(r[key]) for r in rows] for key in rows[0]}
