"""Fitting epochs with and without allocator.keep_freed_memory (glibc's fixed mmap and
trim thresholds), each in a fresh process, in pairs: the setting only takes effect for a
whole process, so the A/B cannot interleave inside one.

    python benchmarks/malloc_fit_ab.py [--pairs 5] [--epochs 6]

Each process fits the seed's two networks (2,000-row batches, 16,000 rows) for 2 epochs of
warm-up and then `--epochs` timed ones, and prints its median seconds per epoch and its
minor page faults per epoch.
"""

import argparse
import subprocess
import sys

CHILD = """
import resource, statistics, sys, time, torch
from dynaplan.accel.allocator import keep_freed_memory
from dynaplan.accel.fit_steps import train_forward
from dynaplan.models import DynamicsModel, RewardModel
from dynaplan.models.fitting import adam
if sys.argv[1] == "kept":
    assert keep_freed_memory()
torch.manual_seed(0)
models = [DynamicsModel(3, 1), RewardModel(3, 1)]
optimizers = [adam(m.parameters(), 3e-4) for m in models]
x, ys = torch.randn(16000, 4), [torch.randn(16000, 3), torch.randn(16000, 1)]
def epoch():
    for idx in torch.randperm(16000).split(2000):
        noise = torch.randn(2000, 4) * 1e-3
        for model, opt, y in zip(models, optimizers, ys):
            loss = torch.mean((train_forward(model.net, x[idx] + noise) - y[idx]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
for _ in range(2):
    epoch()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    epoch()
    times.append(time.perf_counter() - start)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / len(times)
print(f"{statistics.median(times):.3f} {faults:.0f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    print("pair | glibc defaults: s/epoch, faults/epoch | kept: s/epoch, faults/epoch")
    for pair in range(args.pairs):
        row = []
        for mode in ("default", "kept"):
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(args.epochs)],
                                 capture_output=True, text=True, check=True).stdout.split()
            row.append(f"{out[0]} s, {out[1]}")
        print(f"{pair} | {row[0]} | {row[1]}")


if __name__ == "__main__":
    main()
