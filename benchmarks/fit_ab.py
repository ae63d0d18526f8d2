"""Fitting the seed's two networks as they are now against the same networks with this
session's fitting changes undone, interleaved fit by fit in one process: `dynaplan
bench`'s fitting setting (20,000 random Pendulum-v1 transitions, 80% train, batch 2,000),
median seconds per epoch of each and their ratio, and each fit's validation loss (the
two must agree up to rounding).

    python benchmarks/fit_ab.py [--undo input_linear relu_inplace] [--fits 6] [--epochs 5]

input_linear: the first layer back to a plain nn.Linear (models/input_linear.py);
relu_inplace: the ReLUs back to out of place (models/mlp.py).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from dynaplan import bench
from dynaplan.models import ModelFitter

UNDO = ("input_linear", "relu_inplace")


def undone(net: nn.Sequential, undo: list[str]) -> None:
    """Turn `net` (in place) back into the network before the changes named in `undo`."""
    if "input_linear" in undo:
        first = nn.Linear(net[0].in_features, net[0].out_features)
        first.load_state_dict(net[0].state_dict())
        net[0] = first
    if "relu_inplace" in undo:
        for i, module in enumerate(net):
            if isinstance(module, nn.ReLU):
                net[i] = nn.ReLU()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--undo", nargs="+", choices=UNDO, default=list(UNDO))
    parser.add_argument("--fits", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    data = bench.random_data(20_000)
    split = data.split(0.2, np.random.default_rng(0))
    fitters = {}
    for name in ("now", "undone"):
        dyn, rew = bench.fitted_models(data, bench.SEED_NET)
        if name == "undone":
            undone(dyn.net, args.undo)
            undone(rew.net, args.undo)
        fitters[name] = ModelFitter(dyn, rew, lr=3e-4, epochs=args.epochs, batch_size=2000,
                                    input_noise=0.001)
    gens = {k: torch.Generator().manual_seed(0) for k in fitters}
    seconds: dict[str, list[float]] = {k: [] for k in fitters}
    losses: dict[str, list[float]] = {k: [] for k in fitters}
    for _ in range(args.fits):
        for name, fitter in fitters.items():
            result = fitter.fit(data, split, gens[name])
            seconds[name].append(result.seconds / args.epochs)
            losses[name].append(round(result.dynamics_valid, 6))
    now, before = (float(np.median(seconds[k])) for k in ("now", "undone"))
    print(f"s/epoch: now {now:.3f}, with {' and '.join(args.undo)} undone {before:.3f}, "
          f"ratio {now / before:.3f} (medians of {args.fits} fits of {args.epochs} epochs)")
    print("dynamics validation loss per fit:", losses)


if __name__ == "__main__":
    main()
