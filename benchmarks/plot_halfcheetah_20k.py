"""The figure of BENCHMARKS.md's "HalfCheetah-v5 within 20,000 steps": the training
episodes' return per seed and their median, and the model's open-loop error, from the
metrics.csv files copied into benchmarks/results/halfcheetah_20k/.

    python benchmarks/plot_halfcheetah_20k.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dynaplan.metrics import read_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "halfcheetah_20k"
FIGURE = ROOT / "docs" / "figures" / "halfcheetah_20k.png"


def main() -> None:
    runs = {s: read_metrics(RESULTS / f"s{s}_metrics.csv") for s in (0, 1, 2)}
    fig, (ret, err) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.array(runs[0]["env_steps"])
    returns = np.array([run["train/return"] for run in runs.values()])
    for s, row in zip(runs, returns, strict=True):
        ret.plot(steps, row, lw=0.8, alpha=0.6, label=f"seed {s}")
    ret.plot(steps, np.median(returns, axis=0), "k", lw=2, label="median of 3 seeds")
    ret.axhline(1000, color="gray", ls="--", lw=1, label="target 1,000")
    ret.set(xlabel="Environment steps (random data included)",
            ylabel="Return of the planned training episode",
            title="HalfCheetah-v5, --preset pets, 20,000 steps")
    ret.legend(fontsize=8)
    for key, label in (("model/open_loop_error_1", "1 step"),
                       ("model/open_loop_error_5", "5 steps"),
                       ("model/open_loop_error_h", "H = 15 steps")):
        err.plot(steps, np.median([run[key] for run in runs.values()], axis=0),
                 marker=".", label=label)
    err.set(xlabel="Environment steps (random data included)",
            ylabel="Open-loop error, held-out (normalized RMS)",
            title="Model error, median of 3 seeds", yscale="log")
    err.legend(fontsize=8)
    for ax in (ret, err):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=100)
    print(FIGURE)


if __name__ == "__main__":
    main()
