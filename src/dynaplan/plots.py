"""Figures from metrics: a run's figures (the seed's three, with the environment steps on
the x axis, and the diagnostics), redrawn as a run goes, and the planner
comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dynaplan.figures import RunFigures  # noqa: E402
from dynaplan.safe_files import atomic_write  # noqa: E402

RUN_FIGURES = ("return.png", "dynamics_loss.png", "reward_loss.png")


def save(fig: Figure, path: Path, root: Path | None = None) -> None:
    """The figure as a PNG at `path`, through a temporary file (safe_files.py), closed."""
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110), root)
    finally:
        plt.close(fig)


def plot_run(metrics: Mapping[str, Sequence[float]], folder: Path, title: str,
             root: Path | None = None) -> list[Path]:
    """return.png (the training episodes' observed return and the reward model's
    prediction of it, the evaluation mean with its min-max band), dynamics_loss.png and
    reward_loss.png, over the environment steps (figures.py), inside `root` (default: the
    folder's parent, the run folder)."""
    return RunFigures(title).draw(metrics, folder, root, RUN_FIGURES)


def plot_diagnostics(metrics: Mapping[str, Sequence[float]], path: Path, title: str,
                     root: Path | None = None) -> Path:
    """diagnostics.png: over the environment steps, the dynamics model's open-loop error
    at 1, 5 and H steps, the planner's predicted against the real return, the reward
    model's error and the learned termination's precision and recall (diagnostics.py)."""
    return RunFigures(title).draw_one("diagnostics.png", metrics, path,
                                      path.parent if root is None else root)


def plot_comparison(
    curves: Mapping[str, Sequence[Sequence[float]]], path: Path, title: str, ylabel: str,
    root: Path | None = None,
) -> Path:
    """One curve per method: mean over seeds with a min-max band. curves[name]: per seed
    a list of values per iteration (seeds may differ in length; the common prefix is used)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, runs in curves.items():
        length = min(len(r) for r in runs)
        data = np.asarray([r[:length] for r in runs], dtype=float)
        x = np.arange(length)
        ax.plot(x, data.mean(0), label=f"{name} (mean of {len(runs)})")
        ax.fill_between(x, data.min(0), data.max(0), alpha=0.2)
    ax.set_title(title)
    ax.set_xlabel("Iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save(fig, path, root)
    return path
