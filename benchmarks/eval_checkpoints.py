"""Evaluate kept checkpoints of finished runs after training, and write the results where
an evaluation inside the run would have put them (metrics.csv's eval/return columns of
that iteration), so `dynaplan report` draws them. Runs trained with `--eval-episodes 0
--keep-checkpoints K` spend no time evaluating checkpoints that no figure needs.

    python benchmarks/eval_checkpoints.py runs/sweeps/inverted_pendulum_search300x5 \
        --iterations 1 3 --episodes 5 --workers 2

Each (run, iteration) is `dynaplan eval RUN --iteration K --episodes N` (planner seed 0),
one torch thread per worker; its JSON goes to RUN/eval/iter_K.json. A row that already
holds an eval/return is left alone unless `--redo`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dynaplan.safe_files import atomic_write


def evaluate_one(run: str, iteration: int, episodes: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from dynaplan.app.eval import evaluate_run

    result = evaluate_run(Path(run), episodes, False, 0, "cpu", iteration)
    out = Path(run) / "eval" / f"iter_{iteration}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


def record(run: Path, result: dict) -> None:
    path = run / "metrics.csv"
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        if int(row["iteration"]) == result["checkpoint_iteration"]:
            row["eval/return"] = result["return_mean"]
            row["eval/return_min"] = result["return_min"]
            row["eval/return_max"] = result["return_max"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda fh: fh.write(text.getvalue().encode()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="a run folder or a folder of run folders")
    p.add_argument("--iterations", type=int, nargs="+", required=True)
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--redo", action="store_true")
    args = p.parse_args()
    runs = sorted(c.parent for c in args.root.rglob("config.json")
                  if (c.parent / "metrics.csv").is_file())
    todo = []
    for run in runs:
        with open(run / "metrics.csv", newline="") as fh:
            done = {int(r["iteration"]): r.get("eval/return") for r in csv.DictReader(fh)}
        for k in args.iterations:
            if k in done and (args.redo or done[k] in ("", "nan", None)):
                todo.append((run, k))
    print(f"{len(todo)} evaluations to run")
    with ProcessPoolExecutor(args.workers) as pool:
        futures = {pool.submit(evaluate_one, str(r), k, args.episodes): (r, k) for r, k in todo}
        for future, (run, k) in futures.items():
            result = future.result()
            record(run, result)
            print(f"{run.name} iteration {k} ({result['env_steps']} steps): "
                  f"{result['return_mean']:.1f} {[round(x, 1) for x in result['returns']]}, "
                  f"plan {result['plan_ms_p50']:.0f} ms p50", flush=True)


if __name__ == "__main__":
    main()
