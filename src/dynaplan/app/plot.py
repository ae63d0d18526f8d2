"""`dynaplan plot`: redraw each run's figures from its metrics.csv, and one overlay of
several runs' returns."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dynaplan.errors import ConfigError
from dynaplan.metrics import read_metrics
from dynaplan.plots import plot_comparison, plot_diagnostics, plot_run
from dynaplan.runs import METRICS, PLOTS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="redraw a run's figures from its metrics.csv",
                       description="Redraw each run's figures into RUN_DIR/plots; with "
                                   "several runs also one overlay of their returns.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders with metrics.csv")
    p.add_argument("--out", metavar="FILE", default="returns_overlay.png",
                   help="overlay figure path when several runs are given (default: "
                        "returns_overlay.png in the current folder)")


def run(args: argparse.Namespace) -> int:
    runs = []
    for d in map(Path, args.run_dirs):
        if not (d / METRICS).is_file():
            raise ConfigError(f"{d} is not a run folder (no {METRICS})")
        metrics = read_metrics(d / METRICS)
        if not metrics:
            raise ConfigError(f"{d}/{METRICS} has no rows yet")
        runs.append((d, metrics))
        for path in plot_run(metrics, d / PLOTS, d.name):
            print(path)
        if "model/open_loop_error_1" in metrics:  # runs of dynaplan before diagnostics lack it
            print(plot_diagnostics(metrics, d / PLOTS / "diagnostics.png", d.name, d))
    if len(runs) > 1:
        def key(m: dict) -> str:
            return "eval/return" if np.isfinite(m["eval/return"]).any() else "train/return"

        curves = {d.name: [m[key(m)]] for d, m in runs}
        print(plot_comparison(curves, Path(args.out), "Return per iteration", "Return"))
    return 0
