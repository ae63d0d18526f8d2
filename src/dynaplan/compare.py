"""`dynaplan compare`: several planners x several seeds, one figure and one table."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from dynaplan.config import TrainConfig
from dynaplan.errors import ConfigError
from dynaplan.loop import train
from dynaplan.plots import plot_comparison


def compare(
    base: TrainConfig,
    planners: list[str],
    seeds: list[int],
    out: Path,
    progress: bool = True,
    echo=print,
) -> str:
    """Train every (planner, seed) into out/<planner>__s<seed>/, draw out/returns.png and
    write out/final_returns.csv; return the table as markdown."""
    if len(set(planners)) != len(planners) or len(set(seeds)) != len(seeds):
        raise ConfigError("--planners and --seeds must not repeat a value")
    metric = "eval/return" if base.eval_episodes > 0 else "train/return"
    curves: dict[str, list[list[float]]] = {}
    finals: dict[str, list[float]] = {}
    for planner in planners:
        for seed in seeds:
            config = dataclasses.replace(base, planner=planner, seed=seed)
            echo(f"== {planner}, seed {seed}")
            result = train(config, out / f"{planner}__s{seed}", progress=progress, echo=echo)
            with open(result.run_dir / "metrics.csv", newline="") as fh:
                values = [float(r[metric]) for r in csv.DictReader(fh)]
            curves.setdefault(planner, []).append(values)
            finals.setdefault(planner, []).append(values[-1])
    plot_comparison(curves, out / "returns.png", f"{base.env}: {metric} per iteration",
                    metric)
    with open(out / "final_returns.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["planner", *[f"seed_{s}" for s in seeds], "mean", "min", "max"])
        for planner, vals in finals.items():
            writer.writerow([planner, *vals, np.mean(vals), np.min(vals), np.max(vals)])
    lines = [f"final {metric} after {base.iterations} iterations ({out})",
             "| planner | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | min | max |",
             "|---" * (len(seeds) + 4) + "|"]
    for planner, vals in finals.items():
        cells = " | ".join(f"{v:.1f}" for v in vals)
        lines.append(f"| {planner} | {cells} | {np.mean(vals):.1f} | {np.min(vals):.1f} | "
                     f"{np.max(vals):.1f} |")
    table = "\n".join(lines)
    (out / "final_returns.md").write_text(table + "\n")
    return table
