"""Rebuild report-ready run folders (config.json + metrics.csv) from the metrics kept in
benchmarks/results, so `dynaplan report` can draw kept runs beside new ones.

    python benchmarks/rebuild_runs.py benchmarks/results/inverted_pendulum OUT \
        --env InvertedPendulum-v5 --iterations 6 --set eval_episodes=5 eval_every=2
    dynaplan report OUT

Each `<env>__<preset>__s<seed>_metrics*.csv` becomes OUT/<env>__<preset>__s<seed>/ with the
preset's config (the given options set) and its metrics cut to the first `--iterations`.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

from dynaplan.config import config_from_values, to_dict

NAME = re.compile(r"(?P<env>[^_]+)__(?P<preset>[a-z-]+)__s(?P<seed>\d+)_metrics")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--env", required=True)
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--set", nargs="*", default=[], help="option=value (JSON values)")
    args = p.parse_args()
    extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    for path in sorted(args.results.glob("*_metrics*.csv")):
        m = NAME.match(path.name)
        if not m or m["env"] != args.env:
            continue
        config = config_from_values({"preset": m["preset"], "env": args.env,
                                     "seed": int(m["seed"]), "iterations": args.iterations,
                                     **extra})
        run = args.out / path.name[: m.end("seed")]
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(to_dict(config), indent=2))
        with path.open() as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) < args.iterations]
        with (run / "metrics.csv").open("w", newline="") as f:
            csv.writer(f).writerows(kept)
        print(run, len(kept) - 1, "iterations")


if __name__ == "__main__":
    main()
