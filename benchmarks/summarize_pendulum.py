"""Summarize benchmarks/pendulum_seed_defaults.sh output as markdown tables.

python benchmarks/summarize_pendulum.py OUT_DIR
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np


def dynaplan_rows(folder: Path) -> list[str]:
    lines = ["| planner | seed | eval/return it 0 | it 1 | last | first it >= -200 | "
             "train plan ms p50 | fit s/it |", "|---|---|---|---|---|---|---|---|"]
    for run in sorted(p for p in folder.iterdir() if (p / "metrics.csv").is_file()):
        with open(run / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        ev = [float(r["eval/return"]) for r in rows]
        first = next((i for i, v in enumerate(ev) if v >= -200), None)
        plan = np.median([float(r["time/plan_ms_p50"]) for r in rows])
        fit = np.median([float(r["time/fit_s"]) for r in rows])
        planner, seed = run.name.split("__s")
        last = f"{ev[-1]:.1f} (it {len(ev) - 1})"
        lines.append(f"| {planner} | {seed} | {ev[0]:.1f} | {ev[1]:.1f} | {last} | "
                     f"{first} | {plan:.1f} | {fit:.2f} |")
    return lines


def seedref_rows(folder: Path) -> list[str]:
    lines = ["| planner | seed | return per iteration | plan ms/step (mean) |", "|---|---|---|---|"]
    for path in sorted(folder.glob("*.json")):
        log = json.loads(path.read_text())
        planner, seed = path.stem.split("_s")
        rets = ", ".join(f"{r['ret']:.0f}" for r in log)
        plan = np.median([r["plan_ms"] for r in log])
        lines.append(f"| {planner} | {seed} | {rets} | {plan:.1f} |")
    return lines


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print("\n".join(dynaplan_rows(out / "compare_pendulum")))
    print()
    print("\n".join(seedref_rows(out / "seedref")))
