"""`dynaplan bench`: planning latency against this machine's matmul floor and the seed.

For each setting it times >= `calls` plan calls after warm-up and reports the median
and p99, the FLOPs of one call counted from the layer shapes, and `floor_ms`: those
FLOPs at the best matmul rate measured in the same process (a large square matmul, and
the planner's own hidden layer shape). For the seed's settings, the seed's own planners
(`cem_control` / `random_control` from seed_reference.py, where it is found: see
bench_setup) run on networks of identical shapes with fitted scalers, interleaved call by
call with dynaplan's. Also MPC steps per second and fitting seconds per epoch against
their floor.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dynaplan import accel
from dynaplan.accel.precision import tf32_matmuls
from dynaplan.agent import MPCAgent
from dynaplan.app.bench_report import format_table, write_json
from dynaplan.app.bench_setup import (
    CPU_SETTINGS,
    ENV,
    SEED_NET,
    SEED_REFERENCE_VARIABLE,
    SETTINGS,
    Setting,
    build,
    ensemble_gflop,
    fit_gflop_per_epoch,
    fitted_models,
    flops_per_row,
    load_seed_reference,
    plan_gflop,
    random_data,
    seed_models,
    seed_reference_path,
    setting_models,
)
from dynaplan.app.flags import SEED_EXERCISE
from dynaplan.app.matmul_floor import MatmulProbe, square_probe, time_interleaved
from dynaplan.app.output import echo_for
from dynaplan.build import build_fit_parts, resolve_device
from dynaplan.config import TrainConfig
from dynaplan.envs import make_env
from dynaplan.episodes import Warn, warn_stderr
from dynaplan.errors import ConfigError
from dynaplan.models import fit
from dynaplan.types import DEVICES


def bench_setting(setting, buf, device, calls, warmup, ref, compile, cuda_graph=False,
                  kernel: str = "auto") -> dict:
    dyn, rew, planned = setting_models(setting, buf, device)
    planner = build(setting, planned, rew, device, compile, cuda_graph, kernel)
    kernel = getattr(planner, "planner", planner).objective.kernel  # "auto" resolved
    obs_np = buf.obs[0] if setting.batch == 1 else buf.obs[:setting.batch]  # [O] or [B, O]
    agent = MPCAgent(planner, device)
    timed: dict[str, Callable[[], object]] = {"dynaplan": lambda: agent.act(obs_np)}
    if cuda_graph:  # the same planner without the graph, side by side
        eager = MPCAgent(build(setting, planned, rew, device, compile, kernel=kernel), device)
        timed["eager"] = lambda: eager.act(obs_np)
    elif kernel != "torch":  # the torch path, side by side
        plain = MPCAgent(build(setting, planned, rew, device, compile, kernel="torch"), device)
        timed["torch"] = lambda: plain.act(obs_np)
    if ref is not None and setting.seed_planner:
        ref.HORIZON_LENGTH, ref.NUM_ACTIONS_SEQUENCES = setting.horizon, setting.num_sequences
        ref.CEM_OPTIMIZATION_ITERS = setting.iterations
        (em, rm), scalers = seed_models(ref, buf, dyn.cpu(), rew.cpu())
        dyn.to(device), rew.to(device)
        fn = getattr(ref, setting.seed_planner)
        env = make_env(ENV)[0]
        env.action_space.seed(0)
        timed["seed"] = lambda: fn(em, rm, obs_np, env.action_space.sample, scalers, "cpu")
    if setting.members:
        gflop, layer_shape = ensemble_gflop(setting, planned)
        hidden = list(setting.net["hidden"])
    else:
        gflop = plan_gflop(setting, dyn, rew)
        hidden = list(dyn.net.hidden)
        # the first hidden-to-hidden layer, batched over the planning networks
        networks = 2 if setting.learned_reward else 1
        layer_shape = [networks, setting.num_sequences, hidden[0], hidden[1]]
    k, m, kk, n = layer_shape
    probes = {"square": square_probe(device), "layer": MatmulProbe(m, kk, n, k, device)}
    timed.update(probes)
    time_interleaved(timed, warmup)
    samples = time_interleaved(timed, calls)
    square, layer = (probes[k].rate(samples[k]) for k in ("square", "layer"))
    ms = {k: 1e3 * np.asarray(v) for k, v in samples.items()}
    out = {
        "setting": setting.name,
        "planner": setting.planner,
        "num_sequences": setting.num_sequences,
        "horizon": setting.horizon,
        "iterations": setting.iterations,
        "elites": setting.elites,
        "rollout_kernel": kernel,
        "members": setting.members,
        "particles": setting.particles,
        "env": setting.env,
        "batch": setting.batch,
        "hidden": hidden,
        "ms_p50": float(np.median(ms["dynaplan"])),
        "ms_p99": float(np.percentile(ms["dynaplan"], 99)),
        "gflop_per_call": gflop,
        "layer_shape": layer_shape,
        "square_gflops": square,
        "layer_gflops": layer,
        "floor_ms": 1e3 * gflop / max(square, layer),
    }
    out["ratio_to_floor"] = out["ms_p50"] / out["floor_ms"]
    if "seed" in samples:
        out["seed_ms_p50"] = float(np.median(ms["seed"]))
        out["speedup_vs_seed"] = out["seed_ms_p50"] / out["ms_p50"]
    for other in ("eager", "torch"):
        if other in samples:
            out[f"{other}_ms_p50"] = float(np.median(ms[other]))
            out[f"speedup_vs_{other}"] = out[f"{other}_ms_p50"] / out["ms_p50"]
    return out


def bench_loop(setting: Setting, buf, device, steps: int, cuda_graph: bool = False,
               kernel: str = "auto") -> float:
    """MPC environment steps per second (plan + env.step) on Pendulum-v1."""
    dyn, rew = fitted_models(buf, setting.net)
    dyn.to(device).eval()
    rew.to(device).eval()
    planner = build(setting, dyn, rew, device, compile=False, cuda_graph=cuda_graph,
                    kernel=kernel)
    agent = MPCAgent(planner, device)
    env = make_env(ENV)[0]
    obs, _ = env.reset(seed=0)
    agent.act(obs)
    start = time.perf_counter()
    for _ in range(steps):
        obs, _, term, trunc, _ = env.step(agent.act(obs))
        if term or trunc:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - start)


def bench_fit(device, epochs: int, n: int = 20_000, fits: int = 5, probes_per_fit: int = 3) -> dict:
    """Seconds per epoch fitting the seed's two models on `n` transitions (80% train):
    the median of `fits` fits of `epochs` epochs each, divided by `epochs`. A fit's own
    work (normalizers, one validation pass) is shared by its epochs, as in a run (the
    seed fits 50 epochs per iteration), and its FLOPs are counted in the floor. Before
    every fit and after the last, `probes_per_fit` calls each of the square probe and of
    the fit's widest layer ([batch, 512] x [512, 256]) time the floor beside the fits."""
    buf = random_data(n)
    dyn, rew = fitted_models(buf, SEED_NET)
    dyn.to(device), rew.to(device)
    batch_size = 2000  # the seed's fit: TrainConfig's defaults
    parts = build_fit_parts(TrainConfig(), dyn, rew)
    split = buf.split(0.2, np.random.default_rng(0))
    gen = torch.Generator().manual_seed(0)
    hidden = list(dyn.net.hidden[:2])  # the widest layer: [batch, 512] x [512, 256]
    probes = {"square": square_probe(device),
              "layer": MatmulProbe(batch_size, hidden[0], hidden[1], device=device)}
    times: dict[str, list[float]] = {k: [] for k in probes}
    seconds = []
    for _ in range(fits):
        time_interleaved(probes, probes_per_fit, into=times)
        start = time.perf_counter()
        fit(parts, buf.tensors(device), split, epochs, gen)
        seconds.append(time.perf_counter() - start)
    time_interleaved(probes, probes_per_fit, into=times)
    gflop = fit_gflop_per_epoch(len(split.train), len(split.valid), epochs,
                                flops_per_row(dyn, rew))
    out: dict[str, Any] = {
           "transitions": n, "train_rows": len(split.train), "valid_rows": len(split.valid),
           "epochs_per_fit": epochs, "fits": fits,
           "s_per_epoch": float(np.median(seconds)) / epochs,
           "gflop_per_epoch": gflop,
           "square_gflops": probes["square"].rate(times["square"]),
           "layer_gflops": probes["layer"].rate(times["layer"]),
           "layer_shape": [1, batch_size, *hidden]}
    out["floor_s"] = out["gflop_per_epoch"] / max(out["square_gflops"], out["layer_gflops"])
    out["ratio_to_floor"] = out["s_per_epoch"] / out["floor_s"]
    return out


def run_bench(device: torch.device, calls: int, warmup: int, seed_reference: Path | None,
              compile: bool, fit_epochs: int, loop_steps: int, echo=print,
              settings: tuple[str, ...] | None = None, cuda_graph: bool = False,
              tf32: bool = False, kernel: str = "auto", warn: Warn = warn_stderr) -> dict:
    """All figures of `dynaplan bench`. settings: names from SETTINGS (default: all of
    them on a GPU, CPU_SETTINGS on a CPU); cuda_graph: plan through GraphedPlanner and
    time the plain planner beside it; tf32: every float32 matmul on a GPU (plans, floor
    probes and fits alike) on TF32 tensor cores, else in full float32; kernel: how the
    rollouts run, torch ops or one kernel a call (planners/objective.py KERNELS; a kernel's
    plan calls are timed beside the torch path's); seed_reference: the seed's code to time
    beside the seed's settings (None: not; one it cannot load for a missing package is
    skipped with a `warn`)."""
    if settings is None:
        settings = tuple(s.name for s in SETTINGS) if device.type == "cuda" else CPU_SETTINGS
    ref = None
    if seed_reference is not None:
        ref, note = load_seed_reference(seed_reference)
        if note is not None:
            warn(note)
    buf = random_data(2000)
    results = []
    with tf32_matmuls(tf32):
        for setting in SETTINGS:
            if setting.name not in settings:
                continue
            try:
                data = buf if setting.env == ENV else random_data(2000, env_id=setting.env)
            except ConfigError as exc:  # e.g. a MuJoCo environment without mujoco installed
                warn(f"bench {setting.name} skipped: {exc}")
                continue
            echo(f"bench {setting.name} ...")
            results.append(bench_setting(setting, data, device, calls, warmup, ref, compile,
                                         cuda_graph, kernel))
        echo("bench whole loop and fitting ...")
        steps_per_s = bench_loop(SETTINGS[0], buf, device, loop_steps, cuda_graph, kernel)
        fit = bench_fit(device, fit_epochs)
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "compile": compile,
        "cuda_graph": cuda_graph,
        "tf32": tf32,
        "rollout_kernel": kernel,
        "calls": calls,
        "seed_reference": str(seed_reference) if ref is not None else None,
        # the median of the square probes' rates beside each setting and the fits
        "square_matmul_gflops": float(np.median(
            [r["square_gflops"] for r in results] + [fit["square_gflops"]])),
        "settings": results,
        "mpc_steps_per_s": steps_per_s,
        "fit": fit,
    }


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench",
                       help="time planning and fitting against this machine's matmul floor",
                       description="Time plan calls of the seed's settings and a PETS-sized "
                                   "one against this machine's matmul floor, and beside the "
                                   "seed's own planners where its code is found; also MPC "
                                   "steps/s and fitting s/epoch. " + SEED_EXERCISE)
    p.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="torch device; auto picks cuda when available (default: auto)")
    p.add_argument("--calls", type=int, default=200,
                   help="timed plan calls per setting (default: 200)")
    p.add_argument("--warmup", type=int, default=10,
                   help="untimed plan calls first (default: 10)")
    p.add_argument("--seed-reference", metavar="FILE",
                   help="the seed's code as one Python file, timed beside dynaplan on the "
                        "same networks; needs scikit-learn; '' skips it (default: the file "
                        f"${SEED_REFERENCE_VARIABLE} names, else the development checkout's "
                        "../shared/anchors copy, else none: skipped with a note)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the planning network first")
    p.add_argument("--cuda-graph", action="store_true",
                   help="plan through CUDA graphs (a CUDA device), timed beside plain calls")
    p.add_argument("--tf32", action="store_true",
                   help="float32 matmuls on TF32 tensor cores (a CUDA device): plans, "
                        "floor probes and fits")
    p.add_argument("--rollout-kernel", choices=accel.ROLLOUT_KERNELS, default="auto",
                   help="the rollouts as the plain torch reference, as fused torch ops, one "
                        "Triton kernel a call (a CUDA device) or one native C kernel call "
                        "(the CPU); auto: native where it can run, else torch. A kernel's "
                        "calls are timed beside the torch path's (default: auto)")
    p.add_argument("--settings", nargs="+", metavar="NAME",
                   help="settings to time: a_seed_cem b_seed_random c_pets_sized "
                        "d_pets_paper, and the pets preset's plan calls: e_pets_pendulum, "
                        "f_pets_pendulum_eval10 (its 10-episode evaluation call), "
                        "g_pets_inverted_pendulum (needs MuJoCo) (default: all on a GPU; all "
                        "but d on a CPU, where d takes seconds per call)")
    p.add_argument("--fit-epochs", type=int, default=10,
                   help="epochs per timed fit (5 fits; the seed fits 50 per iteration) "
                        "(default: 10)")
    p.add_argument("--loop-steps", type=int, default=200,
                   help="timed MPC environment steps (default: 200)")


def run(args: argparse.Namespace) -> int:
    for name in ("calls", "fit_epochs", "loop_steps"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        raise ConfigError("--warmup must be >= 0")
    device = resolve_device(args.device)
    asked = {"cuda_graph": ("--cuda-graph", args.cuda_graph), "tf32": ("--tf32", args.tf32),
             args.rollout_kernel: (f"--rollout-kernel {args.rollout_kernel}", True)}
    for kind, (flag, given) in asked.items():
        reason = accel.refusal(flag, kind, device, where="this bench") if given else None
        if reason is not None:
            raise ConfigError(reason + (" (add --device cpu)" if kind == "native"
                                        and device.type != "cpu" else ""))
    settings = None if args.settings is None else tuple(args.settings)
    names = [s.name for s in SETTINGS]
    for name in settings or ():
        if name not in names:
            raise ConfigError(f"unknown bench setting {name!r} (choose from {', '.join(names)})")
    # the flags first, then the file
    ref, note = seed_reference_path(args.seed_reference)
    if note is not None:
        warn_stderr(note)
    report = run_bench(device, args.calls, args.warmup, ref, args.compile, args.fit_epochs,
                       args.loop_steps, echo=echo_for(False), settings=settings,
                       cuda_graph=args.cuda_graph, tf32=args.tf32, kernel=args.rollout_kernel)
    print(format_table(report))
    if args.json:
        write_json(report, Path(args.json))
    return 0
