"""`dynaplan train | compare | eval | plot`: the command line.

Every `train` flag comes from a TrainConfig field and its one-line help. Precedence:
built-in defaults (the seed exercise) < `--config FILE` < flags. Bad input ends with
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dynaplan.allocator import keep_freed_memory
from dynaplan.config import PLANNERS, TrainConfig, field_type, load_config_file
from dynaplan.errors import ConfigError, TrainingError
from dynaplan.interrupt import SIGNALS, RunInterrupted
from dynaplan.presets import config_from_values

_TYPES = {int: int, float: float, str: str}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_train_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        kwargs: dict[str, Any] = {"default": None, "help": f"{f.metadata['help']} "
                                  f"(default: {f.default})"}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        kwargs["type"] = _TYPES[field_type(f)]
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kwargs)
    parser.add_argument("--config", metavar="FILE",
                        help="YAML or JSON file of train options; flags override it")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or per-episode lines")


def _config_from_args(args: argparse.Namespace, **override: Any) -> TrainConfig:
    values: dict[str, Any] = {}
    if args.config:
        source = f"config file {args.config}"
        data = load_config_file(args.config)
        config_from_values(data, source=source)  # its own errors name the file
        values.update({str(k).replace("-", "_"): v for k, v in data.items()})
    for f in dataclasses.fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    values.update(override)
    return config_from_values(values)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dynaplan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="learn models and act with MPC (the seed exercise)",
                       description="Learn dynamics and reward models, plan with MPC, "
                                   "write a run folder. No flags = the seed exercise.")
    _add_train_flags(p)
    p.add_argument("--out", metavar="DIR",
                   help="run folder (default: runs/<env>__<planner>__s<seed>__<time>)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue this run from its last checkpoint (its own options; "
                        "--iterations may be raised to extend it)")
    p.add_argument("--keep-checkpoints", metavar="K", type=int, default=2,
                   help="keep the newest K checkpoints, one per iteration (default: 2)")

    p = sub.add_parser("compare", help="train several planners over several seeds, one figure",
                       description="Train each planner with each seed and plot return per "
                                   "iteration: mean and min-max band over seeds.")
    p.add_argument("--planners", nargs="+", default=["cem", "random"],
                   choices=PLANNERS, help="planners to compare")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds per planner")
    _add_train_flags(p, skip=("planner", "seed"))
    p.add_argument("--out", metavar="DIR",
                   help="comparison folder (default: runs/compare__<env>__<time>)")

    p = sub.add_parser("eval", help="act with a trained run's models and planner",
                       description="Load a run's last checkpoint (or one iteration's) and "
                                   "run evaluation episodes.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by dynaplan train")
    p.add_argument("--episodes", type=int, default=10, help="episodes on fixed reset seeds")
    p.add_argument("--video", action="store_true", help="save an mp4 of the first episode")
    p.add_argument("--iteration", metavar="K", type=int,
                   help="use the checkpoint written after iteration K (default: the newest); "
                        "the result's env_steps are the run's steps at the end of K")
    p.add_argument("--seed", type=int, default=0, help="seed of the planner's sampling")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="torch device; auto picks cuda when available")

    p = sub.add_parser("plot", help="redraw figures from metrics.csv",
                       description="Redraw each run's figures into RUN_DIR/plots; with "
                                   "several runs also one overlay of their returns.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders with metrics.csv")
    p.add_argument("--out", metavar="FILE", default="returns_overlay.png",
                   help="overlay figure path when several runs are given")

    p = sub.add_parser("bench", help="time planning against the matmul floor and the seed",
                       description="Time plan calls of the seed's settings and a PETS-sized "
                                   "one, against this machine's matmul floor and the seed's "
                                   "own planners; also MPC steps/s and fitting s/epoch.")
    p.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="torch device; auto picks cuda when available")
    p.add_argument("--calls", type=int, default=200, help="timed plan calls per setting")
    p.add_argument("--warmup", type=int, default=10, help="untimed plan calls first")
    p.add_argument("--seed-reference", metavar="PY",
                   default="../shared/anchors/seed_reference.py",
                   help="the seed's code to time side by side ('' to skip)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the planning network first")
    p.add_argument("--cuda-graph", action="store_true",
                   help="plan through CUDA graphs (a CUDA device), timed beside plain calls")
    p.add_argument("--tf32", action="store_true",
                   help="float32 matmuls on TF32 tensor cores (a CUDA device): plans, "
                        "floor probes and fits")
    p.add_argument("--rollout-kernel", choices=["auto", "torch", "triton", "native"],
                   default="auto",
                   help="the rollouts as torch ops, one Triton kernel a call (a CUDA "
                        "device) or one native C kernel call (the CPU); auto: native where "
                        "it can run, else torch. A kernel's calls are timed beside the "
                        "torch path's")
    p.add_argument("--settings", nargs="+", metavar="NAME",
                   help="settings to time: a_seed_cem b_seed_random c_pets_sized "
                        "d_pets_paper (default: all on a GPU; a, b, c on a CPU, where d "
                        "takes seconds per call)")
    p.add_argument("--fit-epochs", type=int, default=10,
                   help="epochs per timed fit (5 fits; the seed fits 50 per iteration)")
    p.add_argument("--loop-steps", type=int, default=200, help="timed MPC environment steps")

    p = sub.add_parser("sweep", help="run a grid of train runs (envs x planners x seeds ...), "
                                     "on Ray when installed",
                       description="Run every combination of a YAML spec's list values (keys: "
                                   "train flags; `out`: the sweep folder), one run folder per "
                                   "trial. Run again to skip finished trials and resume "
                                   "interrupted ones.")
    p.add_argument("spec", metavar="SPEC", help="YAML file: train flags as keys, a list is a "
                                                "grid axis, a scalar is fixed")
    p.add_argument("--out", metavar="DIR",
                   help="sweep folder (default: the spec's out, else runs/sweep__<spec name>)")
    p.add_argument("--address", metavar="ADDR",
                   help="join this Ray cluster (default: start a local Ray instance)")
    p.add_argument("--max-concurrent", metavar="N", type=int,
                   help="trials at once (default: the Ray cluster's CPUs); each runs "
                        "CPUs / N torch threads")
    p.add_argument("--no-ray", action="store_true",
                   help="run the trials one after another in this process")
    p.add_argument("--keep-checkpoints", metavar="K", type=int, default=2,
                   help="keep the newest K checkpoints of each trial (default: 2)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the spec and list the trials' folders; run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("report", help="figures and tables over seeds from a folder of runs",
                       description="Find every run folder under SWEEP_DIR; per environment "
                                   "a figure of return vs environment steps (mean, 95% "
                                   "bootstrap band over seeds) and a table of final returns "
                                   "(IQM, 95% CI), steps to threshold and planning ms.")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a sweep folder or any folder of runs")
    p.add_argument("--threshold", metavar="ENV=VALUE", action="append", default=[],
                   help="return counted as reached (repeatable; defaults: Pendulum-v1=-200, "
                        "InvertedPendulum-v5=1000, else gymnasium's reward_threshold)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for report.md, figures and CSVs (default: SWEEP_DIR)")
    return parser


def _echo(quiet: bool):
    if quiet:
        return lambda *a, **k: None
    from tqdm.auto import tqdm

    return tqdm.write


def _resumed_config(args: argparse.Namespace, run_dir: Path) -> TrainConfig:
    """The run's own config with --iterations applied; any other option given (a flag,
    or a key of --config) that differs from it is refused."""
    from dynaplan.evaluate import load_run_config

    saved = load_run_config(run_dir)
    given: dict[str, Any] = {}
    if args.config:
        data = load_config_file(args.config)
        full = TrainConfig.from_dict(data, source=f"config file {args.config}").to_dict()
        given.update({str(k).replace("-", "_"): full[str(k).replace("-", "_")] for k in data})
    for f in dataclasses.fields(TrainConfig):
        if getattr(args, f.name, None) is not None:
            given[f.name] = getattr(args, f.name)
    own = saved.to_dict()
    for name, value in given.items():
        if name != "iterations" and value != own[name]:
            raise ConfigError(f"--{name.replace('_', '-')} {value} contradicts the run's "
                              f"config ({own[name]}); a resumed run keeps its own options, "
                              "only --iterations may change")
    return dataclasses.replace(saved, iterations=given.get("iterations", saved.iterations))


def cmd_train(args: argparse.Namespace) -> int:
    from dynaplan.loop import resume, train

    if args.keep_checkpoints < 1:
        raise ConfigError(f"--keep-checkpoints must be positive, got {args.keep_checkpoints}")
    options = dict(progress=not args.quiet, echo=_echo(args.quiet),
                   keep_checkpoints=args.keep_checkpoints)
    if args.resume:
        if args.out:
            raise ConfigError("--out cannot be combined with --resume (the run stays in "
                              "RUN_DIR)")
        run_dir = Path(args.resume)
        result = resume(run_dir, _resumed_config(args, run_dir), **options)
        if result.already_complete:
            print(f"dynaplan: {run_dir} is already complete ({result.summary['iterations']} "
                  "iterations); raise --iterations to extend it")
            return 0
    else:
        config = _config_from_args(args)
        result = train(config, Path(args.out) if args.out else None, **options)
    if args.quiet:
        print(result.run_dir)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from dynaplan.compare import compare

    base = _config_from_args(args, planner=args.planners[0], seed=args.seeds[0])
    out = Path(args.out) if args.out else Path("runs") / (
        f"compare__{base.env}__{time.strftime('%Y%m%d-%H%M%S')}")
    table = compare(base, args.planners, args.seeds, out, progress=not args.quiet,
                    echo=_echo(args.quiet))
    print(table)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from dynaplan.evaluate import evaluate_run

    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {args.episodes}")
    if args.iteration is not None and args.iteration < 0:
        raise ConfigError(f"--iteration must be 0 or more, got {args.iteration}")
    result = evaluate_run(Path(args.run_dir), args.episodes, args.video, args.seed, args.device,
                          args.iteration)
    print(json.dumps(result, indent=2))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from dynaplan.metrics import read_metrics
    from dynaplan.plots import plot_comparison, plot_run

    runs = []
    for d in map(Path, args.run_dirs):
        if not (d / "metrics.csv").is_file():
            raise ConfigError(f"{d} is not a run folder (no metrics.csv)")
        metrics = read_metrics(d / "metrics.csv")
        if not metrics:
            raise ConfigError(f"{d}/metrics.csv has no rows yet")
        runs.append((d, metrics))
        for path in plot_run(metrics, d / "plots", d.name):
            print(path)
    if len(runs) > 1:
        key = lambda m: "eval/return" if np.isfinite(m["eval/return"]).any() else "train/return"  # noqa: E731
        curves = {d.name: [m[key(m)]] for d, m in runs}
        print(plot_comparison(curves, Path(args.out), "Return per iteration", "Return"))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from dynaplan.bench import SETTINGS, format_table, run_bench, write_json
    from dynaplan.build import resolve_device
    from dynaplan.planners.objective import kernel_unavailable

    for name in ("calls", "fit_epochs", "loop_steps"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        raise ConfigError("--warmup must be >= 0")
    device = resolve_device(args.device)
    triton = args.rollout_kernel == "triton"
    gpu_only = {"--cuda-graph": args.cuda_graph, "--tf32": args.tf32,
                "--rollout-kernel triton": triton}
    for flag, given in gpu_only.items():
        if given and device.type != "cuda":
            raise ConfigError(f"{flag} needs a CUDA device; this bench runs on {device}")
    if args.rollout_kernel == "native" and device.type != "cpu":
        raise ConfigError(f"--rollout-kernel native runs on the CPU; this bench runs on "
                          f"{device} (add --device cpu)")
    if (reason := kernel_unavailable(args.rollout_kernel)) is not None:
        raise ConfigError(f"--rollout-kernel {args.rollout_kernel}: {reason}")
    settings = None if args.settings is None else tuple(args.settings)
    names = [s.name for s in SETTINGS]
    for name in settings or ():
        if name not in names:
            raise ConfigError(f"unknown bench setting {name!r} (choose from {', '.join(names)})")
    # the flags first, then the file: the default path is relative to the project folder
    ref = Path(args.seed_reference) if args.seed_reference else None
    if ref is not None and not ref.is_file():
        raise ConfigError(f"seed reference not found: {ref} (pass --seed-reference '' to skip)")
    report = run_bench(device, args.calls, args.warmup, ref, args.compile, args.fit_epochs,
                       args.loop_steps, echo=_echo(False), settings=settings,
                       cuda_graph=args.cuda_graph, tf32=args.tf32, kernel=args.rollout_kernel)
    print(format_table(report))
    if args.json:
        write_json(report, Path(args.json))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import shlex

    from tqdm.auto import tqdm

    from dynaplan.sweep import SweepOptions, sweep

    words = ["dynaplan", "sweep", args.spec]
    for flag, value in (("--out", args.out), ("--address", args.address),
                        ("--max-concurrent", args.max_concurrent)):
        words += [flag, str(value)] if value is not None else []
    words += ["--no-ray"] if args.no_ray else []
    options = SweepOptions(out=Path(args.out) if args.out else None, address=args.address,
                           max_concurrent=args.max_concurrent, use_ray=not args.no_ray,
                           keep_checkpoints=args.keep_checkpoints, progress=not args.quiet,
                           dry_run=args.dry_run, command=shlex.join(words))
    try:
        sweep(Path(args.spec), options, echo=tqdm.write,
              notice=lambda line: print(f"dynaplan: {line}", file=sys.stderr))
    except (RunInterrupted, KeyboardInterrupt) as stop:
        print("dynaplan: sweep stopped; run the same command again to skip the finished "
              "trials and resume the others from their last checkpoints", file=sys.stderr)
        return stop.exit_status if isinstance(stop, RunInterrupted) else 130
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import shlex

    from dynaplan.report import parse_thresholds, write_report

    words = ["dynaplan", "report", args.sweep_dir]
    for item in args.threshold:
        words += ["--threshold", item]
    words += ["--out", args.out] if args.out else []
    root = Path(args.sweep_dir)
    print(write_report(root, Path(args.out) if args.out else root,
                       parse_thresholds(args.threshold), shlex.join(words)))
    return 0


COMMANDS = {"train": cmd_train, "compare": cmd_compare, "eval": cmd_eval, "plot": cmd_plot,
            "bench": cmd_bench, "sweep": cmd_sweep, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), as a return value
        return int(exc.code or 0)
    keep_freed_memory()  # no page faults for each batch's tensors (allocator.py)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, TrainingError) as exc:
        print(f"dynaplan: error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as stop:  # SIGINT / SIGTERM during a run: 130 / 143
        print(f"dynaplan: {stop.message()}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("dynaplan: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The console script: exit with main()'s status. Once main has returned, a further
    SIGINT or SIGTERM (a second Ctrl-C, or `timeout` passing on a signal the process was
    already sent) is ignored, so the exit prints no traceback after main's one-line
    message; one that lands in main's own error handling counts as a plain interrupt."""
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    entry()
