"""Issue 21, fitting at the speed limit: one fit of the `pets` preset's ensemble on
Pendulum-v1 data by autograd (the reference FitStep) against the step with its backward
pass written out (accel/ensemble_fit.py, what runs use now), both with the fused Adam,
interleaved, median over repeats; and one step of each, timed alone on a fixed batch.

    python benchmarks/ensemble_step_ab.py [--transitions 1000 2000] [--repeats 5]

One torch thread (OMP_NUM_THREADS=1 is set before torch loads: pets_fit_ab.py). The
reward model is not fitted (the preset plans with Pendulum's known reward).
"""

from __future__ import annotations  # noqa: I001  (torch after pets_fit_ab)

import argparse
import time

from pets_fit_ab import fit_medians, interleaved, pets_config, pets_parts

import torch  # after pets_fit_ab, which sets the thread count

from dynaplan.models.fitting import reference_step


def parts_for(config, fused: bool):
    """`fused`: the written-out step (build's choice); else the reference autograd step."""
    def change(part):
        if part.name == "dynamics" and not fused:
            part.select_step = reference_step
    return pets_parts(config, change)


def step_us(config, fused: bool, steps: int = 1000) -> float:
    part = next(p for p in parts_for(config, fused) if p.name == "dynamics")
    model = part.model.train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(model.members, config.model.ensemble.batch_size, 4, generator=g)
    y = torch.randn(model.members, config.model.ensemble.batch_size, 3, generator=g)
    step = part.select_step(model, x[0])
    for _ in range(50):
        step(model, x, y)
    start = time.perf_counter()
    for _ in range(steps):
        step(model, x, y)
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
    print(f"gradient step alone (no optimizer): autograd {before:.1f} us, written out "
          f"{now:.1f} us: {before / now:.2f}x")
    for n in args.transitions:
        before, now = fit_medians(config, n, parts_for, (False, True), args.repeats)
        print(f"{n} transitions: fit by autograd {before:.3f} s, written out "
              f"{now:.3f} s (median of {args.repeats}): {before / now:.2f}x")


if __name__ == "__main__":
    main()
