"""Fitting the seed's two networks as they are now against the same networks with this
session's fitting changes undone, interleaved fit by fit in one process: `dynaplan
bench`'s fitting setting (20,000 random Pendulum-v1 transitions, 80% train, batch 2,000),
median seconds per epoch of each and their ratio, and each fit's validation loss (the
two must agree up to rounding).

    python benchmarks/fit_ab.py [--undo input_linear relu_inplace] [--fits 6] [--epochs 5]

input_linear: the first layer back to a plain nn.Linear, fitted by plain autograd through
the layers (models.fitting.reference_step) instead of the fast steps (accel/fit_steps.py:
the first Linear's fast weight gradient, accel/input_linear.py, and the fused first block
and native kernels that came with it); relu_inplace: the ReLUs back to out of place
(models/mlp.py).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
from torch import nn

from dynaplan.app import bench_setup
from dynaplan.build import build_fit_parts
from dynaplan.config import TrainConfig
from dynaplan.models import FitPart, fit
from dynaplan.models.fitting import reference_step

UNDO = ("input_linear", "relu_inplace")


def undone(net: nn.Sequential, undo: list[str]) -> None:
    """Turn `net` (in place) back into the network before the changes named in `undo`
    (input_linear: the MLP's first layer is a plain nn.Linear already; its fit step is
    chosen in `fit_parts`)."""
    if "relu_inplace" in undo:
        for i, module in enumerate(net):
            if isinstance(module, nn.ReLU):
                net[i] = nn.ReLU()


def fit_parts(dyn, rew, undo: list[str]) -> list[FitPart]:
    """The seed's fit of both models (lr 3e-4, batches of 2,000, input noise 0.001: the
    defaults), by plain autograd through the layers with input_linear undone."""
    parts = build_fit_parts(TrainConfig(), dyn, rew)
    if "input_linear" in undo:
        parts = [dataclasses.replace(p, select_step=reference_step) for p in parts]
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--undo", nargs="+", choices=UNDO, default=list(UNDO))
    parser.add_argument("--fits", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    data = bench_setup.random_data(20_000)
    split = data.split(0.2, np.random.default_rng(0))
    fitters = {}
    for name in ("now", "undone"):
        dyn, rew = bench_setup.fitted_models(data, bench_setup.SEED_NET)
        if name == "undone":
            undone(dyn.net, args.undo)
            undone(rew.net, args.undo)
        fitters[name] = fit_parts(dyn, rew, args.undo if name == "undone" else [])
    gens = {k: torch.Generator().manual_seed(0) for k in fitters}
    seconds: dict[str, list[float]] = {k: [] for k in fitters}
    losses: dict[str, list[float]] = {k: [] for k in fitters}
    for _ in range(args.fits):
        for name, parts in fitters.items():
            result = fit(parts, data.tensors(), split, args.epochs, gens[name])
            seconds[name].append(result.seconds / args.epochs)
            losses[name].append(round(result.valid["dynamics"], 6))
    now, before = (float(np.median(seconds[k])) for k in ("now", "undone"))
    print(f"s/epoch: now {now:.3f}, with {' and '.join(args.undo)} undone {before:.3f}, "
          f"ratio {now / before:.3f} (medians of {args.fits} fits of {args.epochs} epochs)")
    print("dynamics validation loss per fit:", losses)


if __name__ == "__main__":
    main()
