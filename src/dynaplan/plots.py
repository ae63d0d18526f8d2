"""Figures from metrics: the seed's three plots per run, and the planner comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dynaplan.safe_files import atomic_write  # noqa: E402


def _finite(values: Sequence[float]) -> bool:
    return bool(np.isfinite(np.asarray(values, dtype=float)).any())


def _finite_points(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(ys)
    return xs[keep], ys[keep]


def save(fig: Figure, path: Path, root: Path | None = None) -> None:
    """The figure as a PNG at `path`, through a temporary file (safe_files.py), closed."""
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110), root)
    finally:
        plt.close(fig)


def plot_run(metrics: Mapping[str, Sequence[float]], folder: Path, title: str,
             root: Path | None = None) -> list[Path]:
    """return.png, dynamics_loss.png, reward_loss.png (the seed's three figures), inside
    `root` (default: the folder's parent, the run folder)."""
    root = folder.parent if root is None else root
    it = metrics["iteration"]
    figures = [
        ("return.png", "Return", [("train/return", "training episodes", "tab:blue"),
                                  ("eval/return", "evaluation (mean)", "tab:green")]),
        ("dynamics_loss.png", "Dynamics loss (MSE, normalized)",
         [("model/dynamics_train_loss", "train", "tab:blue"),
          ("model/dynamics_valid_loss", "validation", "tab:red")]),
        ("reward_loss.png", "Reward loss (MSE, normalized)",
         [("model/reward_train_loss", "train", "tab:blue"),
          ("model/reward_valid_loss", "validation", "tab:red")]),
    ]
    paths = []
    for name, ylabel, curves in figures:
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label, color in curves:
            if key in metrics and _finite(metrics[key]):
                x, y = _finite_points(it, metrics[key])  # --eval-every leaves gaps
                marker = "." if len(x) < 30 else None
                ax.plot(x, y, color=color, label=label, marker=marker)
        if name == "return.png" and _finite(metrics.get("eval/return_min", [])):
            x, low = _finite_points(it, metrics["eval/return_min"])
            ax.fill_between(x, low, _finite_points(it, metrics["eval/return_max"])[1],
                            color="tab:green", alpha=0.2, label="evaluation min-max")
        if "loss" in name:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("Iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        save(fig, folder / name, root)
        paths.append(folder / name)
    return paths


def plot_diagnostics(metrics: Mapping[str, Sequence[float]], path: Path, title: str,
                     root: Path | None = None) -> Path:
    """diagnostics.png: per iteration, the dynamics model's open-loop error at 1, 5 and H
    steps, the planner's predicted against the real return, the reward model's error and
    the learned termination's precision and recall (diagnostics.py)."""
    it = metrics["iteration"]
    panels = [
        ("Open-loop error (normalized RMS)", True,
         [("model/open_loop_error_1", "1 step"), ("model/open_loop_error_5", "5 steps"),
          ("model/open_loop_error_h", "H steps")]),
        ("Return over H steps", False,
         [("planner/predicted_return", "planned (predicted)"),
          ("planner/real_return", "real (what followed)")]),
        ("Reward model RMSE", True, [("model/reward_rmse", "reward model")]),
        ("Learned termination (validation)", False,
         [("model/termination_precision", "precision"),
          ("model/termination_recall", "recall")]),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (ylabel, log, curves) in zip(axes.flat, panels, strict=True):
        drawn = False
        for key, label in curves:
            if key in metrics and _finite(metrics[key]):
                x, y = _finite_points(it, metrics[key])
                ax.plot(x, y, label=label, marker="." if len(x) < 30 else None)
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center",
                    transform=ax.transAxes, color="gray")
        elif log and all(min(_finite_points(it, metrics[k])[1], default=1) > 0
                         for k, _ in curves if k in metrics and _finite(metrics[k])):
            ax.set_yscale("log")
        if ylabel.startswith("Learned"):
            ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("Iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path, root)
    return path


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
