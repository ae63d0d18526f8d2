"""Issue 21, no wasted work: one fit of the `pets` preset's models on Pendulum-v1 data with
the reward model left unfitted (what a run under the known reward does now) against the
same fit training it too (what it did before), interleaved, median over repeats.

    python benchmarks/unused_reward_fit_ab.py [--transitions 1000 2000] [--repeats 5]

One torch thread (OMP_NUM_THREADS=1 is set before torch loads: pets_fit_ab.py). Both
fits draw the same batches (models/fitting.py), so the dynamics weights come out
identical; only the time differs.
"""

from __future__ import annotations  # noqa: I001  (torch after pets_fit_ab)

import argparse

from pets_fit_ab import fit_medians, pets_config, pets_parts

import torch  # after pets_fit_ab, which sets the thread count


def parts_for(config, fit_reward: bool):
    """The run's parts, the reward model fitted or not."""
    def change(part):
        if part.name == "reward":
            part.fitted = fit_reward
    return pets_parts(config, change)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = pets_config()
    print(f"pets preset on Pendulum-v1: {config.model.epochs} epochs, ensemble batch "
          f"{config.model.ensemble.batch_size}, reward model batch {config.model.batch_size}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for n in args.transitions:
        before, now = fit_medians(config, n, parts_for, (True, False), args.repeats)
        print(f"{n} transitions: fit with the reward model {before:.3f} s, without "
              f"{now:.3f} s (median of {args.repeats}): {before / now:.2f}x")


if __name__ == "__main__":
    main()
