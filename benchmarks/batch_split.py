"""Why fitting splits the training rows into near-equal batches (not full + small rest).

Fits the seed's two models on 2,600 random Pendulum-v1 transitions (2,080 training rows,
batch 2,000, 50 epochs, 4 successive fits as in 4 iterations) once with the split
"full batches and the rest" and once with near-equal batches, and prints the validation
losses (normalized MSE) of each fit.

python benchmarks/batch_split.py
"""


import numpy as np
import torch

from dynaplan.app.bench_setup import random_data
from dynaplan.build import build_fit_parts
from dynaplan.config import TrainConfig
from dynaplan.models import DynamicsModel, RewardModel, fit
from dynaplan.models import fitting as fit_module


def full_and_rest(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    batches = list(torch.split(perm, batch_size))
    if len(batches) > 1 and batches[-1].numel() == 1:
        tail = batches.pop()
        batches[-1] = torch.cat([batches[-1], tail])
    return batches


def run(buf, split_fn) -> list[tuple[float, float]]:
    fit_module.minibatches = split_fn
    torch.manual_seed(0)
    dyn, rew = DynamicsModel(3, 1), RewardModel(3, 1)
    parts = build_fit_parts(TrainConfig(), dyn, rew)  # lr 3e-4, batch 2000, noise 0.001
    gen = torch.Generator().manual_seed(0)
    out = []
    for it in range(4):
        r = fit(parts, buf.tensors(), buf.split(0.2, np.random.default_rng(it)), 50, gen)
        out.append((r.valid["dynamics"], r.valid["reward"]))
    return out


if __name__ == "__main__":
    buf = random_data(2600)
    near_equal = fit_module.minibatches
    for name, fn in (("full + rest (2000 + 80)", full_and_rest),
                     ("near-equal (1040 + 1040)", near_equal)):
        losses = run(buf, fn)
        cells = ", ".join(f"{d:.5f}/{r:.5f}" for d, r in losses)
        print(f"{name}: dynamics/reward valid loss per fit: {cells}")
