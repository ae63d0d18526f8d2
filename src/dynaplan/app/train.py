"""`dynaplan train`: learn models and act with MPC into a run folder, or `--resume` one."""

from __future__ import annotations

import argparse
from pathlib import Path

from dynaplan.app.flags import SEED_EXERCISE, add_train_flags, config_from_args, resumed_config
from dynaplan.errors import ConfigError
from dynaplan.loop import resume, train


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train",
                       help="learn the models and act with MPC; writes a run folder (start here)",
                       usage="%(prog)s [options]  (the train options below; none: the seed "
                             "exercise)",
                       description="Learn a dynamics and a reward model, plan through "
                                   "them with MPC and write a run folder. With no flags it "
                                   "runs the seed exercise (Pendulum-v1, CEM, 100 iterations "
                                   "of 200 steps, seed 123). " + SEED_EXERCISE)
    add_train_flags(p)
    p.add_argument("--out", metavar="DIR",
                   help="run folder (default: runs/<env>__<planner>__s<seed>__<time>)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue this run from its last checkpoint (its own options; "
                        "--iterations may be raised to extend it)")
    p.add_argument("--keep-checkpoints", metavar="K", type=int, default=2,
                   help="keep the newest K checkpoints, one per iteration (default: 2)")


def run(args: argparse.Namespace) -> int:
    if args.keep_checkpoints < 1:
        raise ConfigError(f"--keep-checkpoints must be positive, got {args.keep_checkpoints}")
    options = dict(progress=not args.quiet, keep_checkpoints=args.keep_checkpoints)
    if args.resume:
        if args.out:
            raise ConfigError("--out cannot be combined with --resume (the run stays in "
                              "RUN_DIR)")
        run_dir = Path(args.resume)
        result = resume(run_dir, resumed_config(args, run_dir), **options)
        if result.already_complete:
            print(f"dynaplan: {run_dir} is already complete ({result.summary['iterations']} "
                  "iterations); raise --iterations to extend it")
            return 0
    else:
        config = config_from_args(args)
        result = train(config, Path(args.out) if args.out else None, **options)
    if args.quiet:
        print(result.run_dir)
    return 0
