"""Compare the runs of benchmarks/peer/side_by_side.sh: dynaplan's `--preset pets`
(OUT/dynaplan_sS/metrics.csv) beside mbrl-lib's PETS (OUT/mbrl_sS.csv, from mbrl_pets.py).
Prints and writes OUT/side_by_side.md, and draws OUT/side_by_side.png (evaluation return
against environment steps: the mean over seeds, the band from the lowest to the highest).

    python benchmarks/peer/compare.py OUT          (dynaplan's Python: numpy, matplotlib)

Each measure is taken per seed on each side, then the table gives the median over seeds of
each side's value and the median over seeds of the per-seed ratio mbrl-lib / dynaplan:

- plan ms: the median over iterations of the iteration's median plan-call time (one call
  per step of its training episode)
- fit s: the median over the fits of a fit's wall seconds
- eval s per episode: the median over the evaluations of an evaluation's wall seconds
  divided by its episodes (dynaplan plans its evaluation episodes in one batch per step,
  mbrl-lib one episode after another)
- steps / wall s to solve: at the first evaluation whose mean return is >= -200, the
  environment steps (random ones included) and the run's wall seconds so far without
  evaluation; a seed that never got there counts as infinite ("not reached") in the
  median, and the ratio is over the seeds both sides solved
- final eval return: the last evaluation's mean return (a ratio of negative returns: above
  1, mbrl-lib's is the lower; the difference is given too)
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

SOLVED = -200.0
DYNAPLAN = {"env_steps": "env_steps", "eval_return": "eval/return", "fit_s": "time/fit_s",
            "plan_ms_p50": "time/plan_ms_p50", "eval_s": "time/eval_s",
            "wall_s": "time/wall_s"}


def _float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_csv(path: Path, names: dict[str, str]) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([_float(r.get(col)) for r in rows]) for k, col in names.items()}


def load(out: Path) -> dict[int, dict[str, dict]]:
    """{seed: {"dynaplan": run, "mbrl-lib": run}} for the seeds that have both; a run is
    its columns (numpy arrays) and its evaluation episodes."""
    seeds: dict[int, dict[str, dict]] = {}
    for run in sorted(out.glob("dynaplan_s*")):
        m = re.fullmatch(r"dynaplan_s(\d+)", run.name)
        if m is None or not (run / "metrics.csv").is_file():
            continue
        cols = read_csv(run / "metrics.csv", DYNAPLAN)
        cfg = json.loads((run / "config.json").read_text())
        cols["episodes"] = float(cfg["eval_episodes"])
        seeds.setdefault(int(m.group(1)), {})["dynaplan"] = cols
    for path in sorted(out.glob("mbrl_s*.csv")):
        m = re.fullmatch(r"mbrl_s(\d+)\.csv", path.name)
        if m is None:
            continue
        cols = read_csv(path, {k: k for k in (*DYNAPLAN, "eval_episodes")})
        cols["episodes"] = float(np.nanmax(cols.pop("eval_episodes")))
        seeds.setdefault(int(m.group(1)), {})["mbrl-lib"] = cols
    both = {s: v for s, v in seeds.items() if len(v) == 2}
    for s in sorted(set(seeds) - set(both)):
        print(f"compare.py: seed {s} has only {', '.join(seeds[s])}; left out", file=sys.stderr)
    return both


def _median(values) -> float:
    """The median of the values that are not NaN (infinities count)."""
    values = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    return float(np.median(values)) if values.size else math.nan


def measures(run: dict) -> dict[str, float]:
    """One run's measures (NaN where it has none)."""
    ev = run["eval_return"]
    evaluated = np.isfinite(ev)
    solved = np.flatnonzero(evaluated & (ev >= SOLVED))
    first = solved[0] if solved.size else None
    return {
        "plan_ms": _median(run["plan_ms_p50"]),
        "fit_s": _median(run["fit_s"]),
        "eval_s_per_episode": _median(run["eval_s"][evaluated] / run["episodes"]),
        # not solved within the run: infinite, so a median over seeds counts it as the worst
        "steps_to_solve": run["env_steps"][first] if first is not None else math.inf,
        "wall_s_to_solve": run["wall_s"][first] if first is not None else math.inf,
        "final_return": ev[evaluated][-1] if evaluated.any() else math.nan,
        "steps": run["env_steps"][-1] if run["env_steps"].size else math.nan,
        "wall_s": run["wall_s"][-1] if run["wall_s"].size else math.nan,
    }


LABELS = {
    "plan_ms": "plan ms per call (median)",
    "fit_s": "fit s (median over fits)",
    "eval_s_per_episode": "eval s per episode (median)",
    "steps_to_solve": f"env steps to eval return >= {SOLVED:.0f}",
    "wall_s_to_solve": f"wall s to eval return >= {SOLVED:.0f}",
    "final_return": "final eval return",
    "wall_s": "run wall s without evaluation",
}


def fmt(v: float, key: str) -> str:
    if np.isinf(v):
        return "not reached"
    if not np.isfinite(v):
        return "-"
    if key in ("steps_to_solve", "steps"):
        return f"{v:.0f}"
    if key == "plan_ms" or key.endswith("return"):
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(per_seed: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    seeds = sorted(per_seed)
    lines = ["| measure | dynaplan | mbrl-lib | mbrl-lib / dynaplan | seeds |",
             "|---|---|---|---|---|"]
    for key, label in LABELS.items():
        d = [per_seed[s]["dynaplan"][key] for s in seeds]
        m = [per_seed[s]["mbrl-lib"][key] for s in seeds]
        ratios = [b / a for a, b in zip(d, m) if np.isfinite(a) and np.isfinite(b) and a != 0]
        if key.endswith("to_solve"):
            n = f"solved {sum(map(np.isfinite, d))} / {sum(map(np.isfinite, m))} of " \
                f"{len(seeds)}, ratio over the {len(ratios)} both solved"
        else:
            n = str(len(ratios))
        lines.append(f"| {label} | {fmt(_median(d), key)} | {fmt(_median(m), key)} | "
                     f"{_median(ratios):.2f} | {n} |" if ratios else
                     f"| {label} | {fmt(_median(d), key)} | {fmt(_median(m), key)} | - | {n} |")
    diff = [per_seed[s]["mbrl-lib"]["final_return"] - per_seed[s]["dynaplan"]["final_return"]
            for s in seeds]
    lines += ["", f"Final eval return, mbrl-lib - dynaplan: median {_median(diff):.1f} over "
                  f"{len(seeds)} seeds."]
    return lines


def seed_table(per_seed: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    keys = ["plan_ms", "fit_s", "eval_s_per_episode", "steps_to_solve", "wall_s_to_solve",
            "final_return", "wall_s"]
    lines = ["| seed | side | " + " | ".join(LABELS[k] for k in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for s in sorted(per_seed):
        for side in ("dynaplan", "mbrl-lib"):
            v = per_seed[s][side]
            lines.append(f"| {s} | {side} | " + " | ".join(fmt(v[k], k) for k in keys) + " |")
    return lines


def figure(runs: dict[int, dict[str, dict]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for side, color in (("dynaplan", "tab:blue"), ("mbrl-lib", "tab:orange")):
        curves = []
        for s in sorted(runs):
            r = runs[s][side]
            ok = np.isfinite(r["eval_return"])
            curves.append(dict(zip(r["env_steps"][ok].tolist(), r["eval_return"][ok].tolist())))
        steps = sorted(set().union(*curves))
        grid = np.array([[c.get(x, np.nan) for x in steps] for c in curves])
        with np.errstate(all="ignore"):
            mean, lo, hi = (np.nanmean(grid, 0), np.nanmin(grid, 0), np.nanmax(grid, 0))
        ax.plot(steps, mean, "o-", color=color, ms=3,
                label=f"{side} (mean of {len(curves)} seeds)")
        ax.fill_between(steps, lo, hi, color=color, alpha=0.2, lw=0)
    ax.axhline(SOLVED, color="gray", ls=":", lw=1, label=f"solved ({SOLVED:.0f})")
    ax.set_xlabel("environment steps (random ones included)")
    ax.set_ylabel("evaluation return")
    ax.set_title("Pendulum-v1: dynaplan --preset pets vs mbrl-lib PETS (band: min-max)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: compare.py OUT", file=sys.stderr)
        return 2
    out = Path(argv[0])
    runs = load(out)
    if not runs:
        print(f"compare.py: no seed in {out} has both runs", file=sys.stderr)
        return 1
    per_seed = {s: {side: measures(r) for side, r in v.items()} for s, v in runs.items()}
    header = (out / "runs.log").read_text().splitlines() if (out / "runs.log").is_file() else []
    episodes = sorted({int(r[side]["episodes"]) for r in runs.values() for side in r})
    md = ["# Pendulum-v1: dynaplan `--preset pets` beside mbrl-lib's PETS", "",
          f"Seeds {', '.join(map(str, sorted(runs)))}; evaluation episodes "
          f"{'/'.join(map(str, episodes))} (reset seeds 10000 + i). Made by "
          "benchmarks/peer/side_by_side.sh; each value is the median over seeds, the ratio "
          "the median of the per-seed ratios (benchmarks/peer/compare.py says how each is "
          "taken).", "", *table(per_seed), "", "Per seed:", "", *seed_table(per_seed), "",
          "![eval return vs env steps](side_by_side.png)"]
    if header:
        md += ["", "Runs:", "", "```", *header, "```"]
    text = "\n".join(md) + "\n"
    (out / "side_by_side.md").write_text(text)
    figure(runs, out / "side_by_side.png")
    print(text, end="")
    print(f"\nwrote {out / 'side_by_side.md'} and {out / 'side_by_side.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
