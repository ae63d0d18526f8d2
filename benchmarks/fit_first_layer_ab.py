"""Fitting the seed's two networks with the data-reading first layer
(models/input_linear.py) against plain nn.Linear, interleaved fit by fit in one process:
`dynaplan bench`'s fitting setting (20,000 random Pendulum-v1 transitions, 80% train,
batch 2,000), median seconds per epoch of each and their ratio, and each fit's
validation loss (the two must agree up to rounding).

    python benchmarks/fit_first_layer_ab.py [--fits 6] [--epochs 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from dynaplan import bench
from dynaplan.models import ModelFitter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    data = bench.random_data(20_000)
    split = data.split(0.2, np.random.default_rng(0))
    fitters = {}
    for name in ("input_linear", "nn_linear"):
        dyn, rew = bench.fitted_models(data, bench.SEED_NET)
        if name == "nn_linear":  # the same weights in a plain nn.Linear
            for model in (dyn, rew):
                first = nn.Linear(model.net[0].in_features, model.net[0].out_features)
                first.load_state_dict(model.net[0].state_dict())
                model.net[0] = first
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
    new, old = (float(np.median(seconds[k])) for k in ("input_linear", "nn_linear"))
    print(f"s/epoch: InputLinear {new:.3f}, nn.Linear {old:.3f}, ratio {new / old:.3f} "
          f"(medians of {args.fits} fits of {args.epochs} epochs)")
    print("dynamics validation loss per fit:", losses)


if __name__ == "__main__":
    main()
