"""A run's figures, made once and redrawn from its metrics as the run goes (loop.py:
every few seconds of training, at its end and at a stop), so that a
run stopped at any point has them (plots/return.png, dynamics_loss.png, reward_loss.png,
diagnostics.png).

The x axis is the environment steps so far (env_steps: random data included; the
iteration for metrics that lack them). Each figure is built once, outside pyplot, with
fixed margins; a redraw only replaces its curves' data, so the axes, ticks and texts are
kept and an iteration's redraw costs a fraction of drawing anew (measured in
docs/logging.md). Log scales carry no minor ticks and plain labels (0.01, not 10^-2 in
mathtext), which would cost more than the curves; where the curves span under two decades,
2 and 5 of each decade are labelled too, so that every log axis has labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator  # noqa: E402

from dynaplan.safe_files import atomic_write  # noqa: E402

DPI = 110
STEPS_LABEL = "Environment steps (random data included)"


@dataclass(frozen=True)
class Curve:
    key: str
    """The metrics column."""
    label: str
    style: Mapping[str, Any]


@dataclass(frozen=True)
class Panel:
    ylabel: str
    curves: tuple[Curve, ...]
    log: bool = False
    """A log scale where every value drawn is above 0."""
    band: tuple[str, str] | None = None
    """Columns of a min-max band (the evaluation's), drawn under the curves."""
    ylim: tuple[float, float] | None = None


def _curve(key: str, label: str, **style: Any) -> Curve:
    return Curve(key, label, style)


RETURN = Panel("Return", (
    _curve("train/return", "training episodes (observed)", color="tab:blue"),
    _curve("train/predicted_return", "training episodes (planning reward's prediction)",
           color="tab:orange", linestyle="--"),
    _curve("eval/return", "evaluation (mean)", color="tab:green")),
    band=("eval/return_min", "eval/return_max"))


def _loss(ylabel: str, model: str) -> Panel:
    return Panel(ylabel, (_curve(f"model/{model}_train_loss", "train", color="tab:blue"),
                          _curve(f"model/{model}_valid_loss", "validation", color="tab:red")),
                 log=True)


DIAGNOSTICS = (
    Panel("Open-loop error (normalized RMS)", (
        _curve("model/open_loop_error_1", "1 step"), _curve("model/open_loop_error_5", "5 steps"),
        _curve("model/open_loop_error_h", "H steps")), log=True),
    Panel("Return over H steps", (
        _curve("planner/predicted_return", "planned (predicted)"),
        _curve("planner/real_return", "real (what followed)"))),
    Panel("Planning reward RMSE", (_curve("model/reward_rmse", "planning reward"),), log=True),
    Panel("Learned termination (validation)", (
        _curve("model/termination_precision", "precision"),
        _curve("model/termination_recall", "recall")), ylim=(-0.05, 1.05)),
)
FIGURES: dict[str, tuple[tuple[Panel, ...], tuple[float, float]]] = {
    "return.png": ((RETURN,), (6, 4)),
    "dynamics_loss.png": ((_loss("Dynamics loss (MSE; an ensemble's train: NLL)", "dynamics"),),
                          (6, 4)),
    "reward_loss.png": ((_loss("Reward loss (MSE, normalized)", "reward"),), (6, 4)),
    "diagnostics.png": (DIAGNOSTICS, (10, 7)),
}
"""Each figure's panels (diagnostics.png: 2 x 2) and size in inches."""


def x_axis(metrics: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, str]:
    """The x values of a run's figures and their label: env_steps, or the iteration for
    metrics that lack them."""
    steps = metrics.get("env_steps")
    if steps is not None and np.isfinite(np.asarray(steps, dtype=float)).any():
        return np.asarray(steps, dtype=float), STEPS_LABEL
    return np.asarray(metrics["iteration"], dtype=float), "Iteration"


def _points(x: np.ndarray, metrics: Mapping[str, Sequence[float]],
            key: str) -> tuple[np.ndarray, np.ndarray]:
    """The finite points of column `key` (none where it is missing): --eval-every and the
    diagnostics leave gaps."""
    if key not in metrics:
        return x[:0], x[:0]
    ys = np.asarray(metrics[key], dtype=float)
    keep = np.isfinite(ys)
    return x[keep], ys[keep]


class _Axes:
    """One panel: its axes, a line per curve (empty until it has points), its band."""

    def __init__(self, ax: Any, panel: Panel, title: str, xlabel: bool = True) -> None:
        self.ax, self.panel, self.xlabel = ax, panel, xlabel
        self.lines = [ax.plot([], [], label=c.label, **c.style)[0] for c in panel.curves]
        self.band: Any = None
        self.empty = ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center",
                             transform=ax.transAxes, color="gray")
        self.scale = "linear"
        ax.set_title(title)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)

    def draw(self, x: np.ndarray, metrics: Mapping[str, Sequence[float]], xlabel: str) -> None:
        ax, drawn, values = self.ax, [], []
        for line, curve in zip(self.lines, self.panel.curves, strict=True):
            xs, ys = _points(x, metrics, curve.key)
            line.set_data(xs, ys)
            line.set_marker("." if len(xs) < 30 else "None")
            if len(xs):
                drawn.append(line)
                values.append(ys)
        if self.band is not None:
            self.band.remove()
            self.band = None
        band: list[np.ndarray] = []
        if self.panel.band is not None:
            low_key, high_key = self.panel.band
            xs, low = _points(x, metrics, low_key)
            _, high = _points(x, metrics, high_key)
            if len(xs) and len(high) == len(xs):
                self.band = ax.fill_between(xs, low, high, color="tab:green", alpha=0.2,
                                            label="evaluation min-max")
                band = [np.column_stack([xs, low]), np.column_stack([xs, high])]
                values += [low, high]
                drawn.append(self.band)
        self.empty.set_visible(not drawn)
        self._scale(values)
        if self.xlabel:
            ax.set_xlabel(xlabel)
        ax.relim()  # the lines only: a band's points are added
        for points in band:
            ax.update_datalim(points)
        ax.autoscale_view(scaley=self.panel.ylim is None)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        if drawn:
            ax.legend(handles=drawn, fontsize=8, loc="best")

    def _scale(self, values: list[np.ndarray]) -> None:
        scale = "log" if self.panel.log and values and all((v > 0).all() for v in values) \
            else "linear"
        if scale != self.scale:
            self.ax.set_yscale(scale)
            if scale == "log":  # plain labels (0.01, 1e-05): mathtext costs more than a curve
                self.ax.minorticks_off()
                self.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            self.scale = scale
        if scale == "log":  # under two decades drawn: 1, 2 and 5 of each, or no label shows
            low = min(float(v.min()) for v in values)
            high = max(float(v.max()) for v in values)
            subs = (1.0,) if high >= 100 * low else (1.0, 2.0, 5.0)
            self.ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))


class RunFigures:
    """The figures of one run, titled `title`; `draw` redraws them all from the metrics
    (columns as record.columns or metrics.read_metrics give them)."""

    def __init__(self, title: str) -> None:
        self.figures: dict[str, tuple[Figure, list[_Axes]]] = {}
        for name, (panels, size) in FIGURES.items():
            fig = Figure(figsize=size)
            if len(panels) == 1:
                axes = [fig.subplots()]
                fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.91)
                titles = [title]
            else:
                axes = list(fig.subplots(2, 2, sharex=True).flat)
                fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=0.93,
                                    wspace=0.25, hspace=0.12)
                fig.suptitle(title)
                titles = [""] * len(panels)
            bottom = len(axes) - (1 if len(axes) == 1 else 2)  # a shared x: labelled once
            self.figures[name] = (fig, [_Axes(ax, p, t, k >= bottom) for k, (ax, p, t) in
                                        enumerate(zip(axes, panels, titles, strict=True))])

    def draw(self, metrics: Mapping[str, Sequence[float]], folder: Path,
             root: Path | None = None, names: Sequence[str] | None = None) -> list[Path]:
        """Redraw the figures `names` (default: all) into `folder`, inside `root` (default:
        the folder's parent, the run folder); returns their paths."""
        root = folder.parent if root is None else root
        return [self.draw_one(name, metrics, folder / name, root)
                for name in (names or self.figures)]

    def draw_one(self, name: str, metrics: Mapping[str, Sequence[float]], path: Path,
                 root: Path) -> Path:
        """Redraw figure `name` as `path` (a PNG written through safe_files)."""
        x, xlabel = x_axis(metrics)
        fig, panels = self.figures[name]
        for panel in panels:
            panel.draw(x, metrics, xlabel)
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI,
                                                  pil_kwargs={"compress_level": 1}), root)
        return path
