"""Train a short PETS run (a probabilistic ensemble planned through by CEM) on Pendulum-v1
from Python, then act with it for one episode.

    python examples/train_and_act.py [--quick] [--out DIR]

Writes a run folder (runs/Pendulum-v1__cem__s123__<time> unless --out) that
`dynaplan eval`, `dynaplan plot` and examples/load_and_act.py read.
"""

import argparse
import os

import dynaplan

TINY = dict(iterations=1, steps_per_iteration=20, train_episode_steps=20, epochs=1,
            num_sequences=20, video_every=0)
"""What --quick replaces in the preset: a run of a few seconds that learns little."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default="DYNAPLAN_QUICK" in os.environ,
                        help="a tiny run and a short episode (what the tests run)")
    parser.add_argument("--out", help="the run folder")
    args = parser.parse_args()
    options = TINY if args.quick else dict(iterations=3)
    run = dynaplan.train(env="Pendulum-v1", preset="pets", out=args.out, device="cpu",
                         progress=not args.quick, **options)
    print(f"trained {run.run_dir}: final train return {run.summary['final_train_return']:.1f}")

    agent = run.load()  # the newest checkpoint's models and planner, on the CPU
    env = agent.make_env()
    obs, _ = env.reset(seed=0)
    agent.reset()  # a new episode: no warm start from the last plan
    total, steps = 0.0, 20 if args.quick else 200
    for _ in range(steps):
        action = agent.act(obs)  # obs [3] -> action [1], inside [-2, 2]
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        if terminated or truncated:
            break
    env.close()
    print(f"episode return {total:.1f} over {steps} steps")


if __name__ == "__main__":
    main()
