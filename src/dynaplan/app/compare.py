"""`dynaplan compare`: several planners x several seeds, one figure and one table."""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from dynaplan.app.flags import SEED_EXERCISE, add_train_flags, given_values
from dynaplan.app.output import echo_for
from dynaplan.config import TrainConfig, config_from_values
from dynaplan.errors import ConfigError
from dynaplan.loop import train
from dynaplan.planners import PLANNERS
from dynaplan.plots import plot_comparison
from dynaplan.runs import name_part
from dynaplan.safe_files import write_text


def configs(values: dict[str, Any], planners: list[str],
            seeds: list[int]) -> dict[tuple[str, int], TrainConfig]:
    """Every (planner, seed)'s config from the option values given: all built, and so
    checked, before the first run starts."""
    if len(set(planners)) != len(planners) or len(set(seeds)) != len(seeds):
        raise ConfigError("--planners and --seeds must not repeat a value")
    return {(p, s): config_from_values({**values, "planner": p, "seed": s})
            for p in planners for s in seeds}


def compare(
    values: dict[str, Any],
    planners: list[str],
    seeds: list[int],
    out: Path,
    progress: bool = True,
    echo=print,
) -> str:
    """Train every (planner, seed) with the option values given into
    out/<planner>__s<seed>/, draw out/returns.png and write out/final_returns.csv; return
    the table as markdown."""
    runs = configs(values, planners, seeds)
    base = next(iter(runs.values()))
    metric = "eval/return" if base.eval_episodes > 0 else "train/return"
    curves: dict[str, list[list[float]]] = {}
    finals: dict[str, list[float]] = {}
    for planner in planners:
        for seed in seeds:
            config = runs[planner, seed]
            echo(f"== {planner}, seed {seed}")
            result = train(config, out / f"{planner}__s{seed}", progress=progress, echo=echo)
            with open(result.run_dir / "metrics.csv", newline="") as fh:
                curve = [float(r[metric]) for r in csv.DictReader(fh)]
            curves.setdefault(planner, []).append(curve)
            finals.setdefault(planner, []).append(curve[-1])
    plot_comparison(curves, out / "returns.png", f"{base.env}: {metric} per iteration",
                    metric, out)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["planner", *[f"seed_{s}" for s in seeds], "mean", "min", "max"])
    for planner, vals in finals.items():
        writer.writerow([planner, *vals, np.mean(vals), np.min(vals), np.max(vals)])
    write_text(out / "final_returns.csv", text.getvalue(), out)
    lines = [f"final {metric} after {base.iterations} iterations ({out})",
             "| planner | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | min | max |",
             "|---" * (len(seeds) + 4) + "|"]
    for planner, vals in finals.items():
        cells = " | ".join(f"{v:.1f}" for v in vals)
        lines.append(f"| {planner} | {cells} | {np.mean(vals):.1f} | {np.min(vals):.1f} | "
                     f"{np.max(vals):.1f} |")
    table = "\n".join(lines)
    write_text(out / "final_returns.md", table + "\n", out)
    return table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare",
                       help="train several planners over several seeds; one figure and a table",
                       usage="%(prog)s [--planners P ...] [--seeds S ...] [--out DIR] "
                             "[train options]",
                       description="Train each planner with each seed and plot return per "
                                   "iteration: mean and min-max band over seeds. "
                                   + SEED_EXERCISE)
    p.add_argument("--planners", nargs="+", default=["cem", "random"],
                   choices=tuple(PLANNERS), help="planners to compare (default: cem random)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="S",
                   help="seeds per planner (default: 0 1 2)")
    add_train_flags(p, skip=("planner", "seed"))
    p.add_argument("--out", metavar="DIR",
                   help="comparison folder (default: runs/compare__<env>__<time>)")


def run(args: argparse.Namespace) -> int:
    values = given_values(args)
    first = configs(values, args.planners[:1], args.seeds[:1])[args.planners[0], args.seeds[0]]
    out = Path(args.out) if args.out else Path("runs") / (
        f"compare__{name_part(first.env)}__{time.strftime('%Y%m%d-%H%M%S')}")
    table = compare(values, args.planners, args.seeds, out, progress=not args.quiet,
                    echo=echo_for(args.quiet))
    print(table)
    return 0
