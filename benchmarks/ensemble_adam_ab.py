"""Issue 21, fitting at the speed limit: one fit of the `pets` preset's ensemble on
Pendulum-v1 data with torch.optim.Adam's default CPU implementation (a loop of about ten
elementwise ops per parameter tensor: what the ensemble used before) against the fused
kernel through accel.select_optimizer (what it uses now), interleaved, median over
repeats; and the optimizer's own step, timed alone.

    python benchmarks/ensemble_adam_ab.py [--transitions 1000 2000] [--repeats 5]

One torch thread (OMP_NUM_THREADS=1 is set before torch loads: pets_fit_ab.py). The
reward model is not fitted (the preset plans with Pendulum's known reward).
"""

from __future__ import annotations  # noqa: I001  (torch after pets_fit_ab)

import argparse
import time

from pets_fit_ab import fit_medians, interleaved, pets_config, pets_parts

import torch  # after pets_fit_ab, which sets the thread count


def parts_for(config, fused: bool):
    """`fused`: the run's fused Adam; else torch.optim.Adam's default, on the ensemble."""
    def change(part):
        if part.name == "dynamics" and not fused:
            part.optimizer = torch.optim.Adam(part.model.parameters(),
                                              lr=config.model.ensemble.lr, weight_decay=5e-5)
    return pets_parts(config, change)


def step_us(config, fused: bool, steps: int = 2000) -> float:
    part = next(p for p in parts_for(config, fused) if p.name == "dynamics")
    for p in part.model.parameters():
        p.grad = torch.randn_like(p)
    for _ in range(50):
        part.optimizer.step()
    start = time.perf_counter()
    for _ in range(steps):
        part.optimizer.step()
    return (time.perf_counter() - start) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = pets_config()
    print(f"pets preset on Pendulum-v1: {config.model.epochs} epochs, ensemble batch "
          f"{config.model.ensemble.batch_size}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    before, now = interleaved(lambda fused: step_us(config, fused), (False, True),
                              args.repeats)
    print(f"optimizer step alone: default Adam {before:.1f} us, fused {now:.1f} us: "
          f"{before / now:.2f}x")
    for n in args.transitions:
        before, now = fit_medians(config, n, parts_for, (False, True), args.repeats)
        print(f"{n} transitions: fit with the default Adam {before:.3f} s, fused "
              f"{now:.3f} s (median of {args.repeats}): {before / now:.2f}x")


if __name__ == "__main__":
    main()
