"""Fits of the seed's two networks four ways, interleaved fit by fit in one process, on
`dynaplan bench`'s fitting setting (20,000 random Pendulum transitions, 80% train, batches
of 2,000):

- native: each step one native call and the weight gradient's product, without autograd
  (`native_fit.mse_step`), what `dynaplan` runs where the native library builds;
- native via autograd: the same kernels called from an autograd Function, the loss and its
  backward pass in torch (what a step took before `mse_step`);
- torch block: the first block (Linear, BatchNorm, ReLU) in one pass of torch ops
  (`accel/input_batchnorm.py`), what it runs without a C compiler;
- layer by layer: every layer its own torch module, as before both (the first Linear's
  weight gradient still in its fast orientation, `accel/input_linear.py`).

    python benchmarks/native_fit_ab.py [--rounds 6] [--epochs 10]

Prints each round's seconds per epoch, the medians and their ratios, and how far the
fitted models' eval-mode predictions on the validation rows ended up from layer by
layer's.
"""

import argparse
import statistics
from unittest import mock

import numpy as np
import torch

from dynaplan.accel import input_batchnorm, native_fit
from dynaplan.accel.allocator import keep_freed_memory
from dynaplan.app.bench_setup import SEED_NET, fitted_models, random_data
from dynaplan.build import build_fit_parts
from dynaplan.config import TrainConfig
from dynaplan.models import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    keep_freed_memory()  # as the command line does
    buf = random_data(20_000)
    split = buf.split(0.2, np.random.default_rng(0))
    modes = ("native", "native via autograd", "torch block", "layer by layer")
    data = buf.tensors()
    fitters, dynamics, gens = {}, {}, {}
    for mode in modes:
        dyn, rew = fitted_models(buf, SEED_NET)
        torch.manual_seed(1)
        for m in (dyn, rew):  # the same start for both
            for p in m.parameters():
                p.data.normal_(0, 0.05)
        # the defaults: lr 3e-4, batches of 2,000, input noise 0.001
        fitters[mode] = build_fit_parts(TrainConfig(), dyn, rew)
        dynamics[mode] = dyn
        gens[mode] = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {k: [] for k in fitters}
    print("round | " + " | ".join(f"{m} s/epoch" for m in modes))
    for r in range(args.rounds + 1):  # round 0 warms up
        for mode, parts in fitters.items():
            on = input_batchnorm.applies if mode != "layer by layer" else (lambda *a: False)
            step = native_fit.takes_mse_step if mode == "native" else (lambda *a: False)
            with mock.patch.object(input_batchnorm, "applies", on), \
                    mock.patch.object(native_fit, "ENABLED", mode.startswith("native")), \
                    mock.patch.object(native_fit, "takes_mse_step", step):
                seconds = fit(parts, data, split, args.epochs, gens[mode]).seconds / args.epochs
            if r:
                times[mode].append(seconds)
        if r:
            print(f"{r} | " + " | ".join(f"{times[m][-1]:.4f}" for m in modes))
    med = {m: statistics.median(times[m]) for m in modes}
    print("medians: " + ", ".join(f"{m} {med[m]:.4f}" for m in modes) + " s/epoch")
    print("layer by layer / each: " + ", ".join(
        f"{m} {med['layer by layer'] / med[m]:.3f}" for m in modes[:3])
        + f"; native via autograd / native = {med['native via autograd'] / med['native']:.3f}")
    valid = torch.as_tensor(np.concatenate([buf.obs, buf.action], 1)[split.valid])
    with torch.no_grad():
        pred = {m: dynamics[m].predict(valid) for m in modes}
    ref = pred["layer by layer"]
    for m in modes[:3]:
        print(f"after {args.rounds + 1} fits of {args.epochs} epochs, {m}: dynamics predictions "
              f"differ from layer by layer's by at most {(pred[m] - ref).abs().max():.2e} "
              f"(scale {ref.abs().max():.2f})")


if __name__ == "__main__":
    main()
