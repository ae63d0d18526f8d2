"""Per-iteration metrics as CSV (namespaced columns) and their reading back."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from dynaplan.diagnostics import COLUMNS as DIAGNOSTICS
from dynaplan.safe_files import write_text

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
    *DIAGNOSTICS,
    "eval/return",
    "eval/return_min",
    "eval/return_max",
    "eval/length",
    "time/fit_s",
    "time/plan_ms_p50",
    "time/plan_ms_p99",
    "time/iteration_s",
    "time/eval_s",
    "time/wall_s",
)
TIMING_PREFIX = "time/"


class MetricsLog:
    """`metrics.csv`, one row per iteration: rewritten whole, through a temporary file
    renamed over it (safe_files.py), at every row, so a killed run keeps every row it
    wrote and the file is never written through a link. `root`: the run folder."""

    def __init__(self, path: Path, root: Path | None = None,
                 rows: list[dict[str, float]] | None = None) -> None:
        self.path, self.root = path, root or path.parent
        self.rows: list[dict[str, float]] = list(rows or [])
        self._write()

    def append(self, row: dict[str, float]) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown metric columns: {sorted(unknown)}")
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        for row in self.rows:
            writer.writerow([_fmt(row.get(c, float("nan"))) for c in COLUMNS])
        write_text(self.path, text.getvalue(), self.root)


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
