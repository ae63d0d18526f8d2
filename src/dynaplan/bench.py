"""`dynaplan bench`: planning latency against this machine's matmul floor and the seed.

For each setting it times >= `calls` plan calls after warm-up and reports the median
and p99, the FLOPs of one call counted from the layer shapes, and `floor_ms`: those
FLOPs at the best matmul rate measured in the same process (a large square matmul, and
the planner's own hidden layer shape). For the seed's settings, the seed's own planners
(`cem_control` / `random_control` from seed_reference.py) run on networks of identical
shapes with fitted scalers, interleaved call by call with dynaplan's.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dynaplan.agent import MPCAgent
from dynaplan.data import ReplayBuffer
from dynaplan.envs import known_reward, make_env
from dynaplan.errors import ConfigError
from dynaplan.matmul_floor import MatmulProbe, square_probe, time_interleaved
from dynaplan.models import DynamicsModel, ModelFitter, RewardModel
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.fused import FusedMLPs
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.planners import ModelObjective, make_planner
from dynaplan.planners.graphed import GraphedPlanner
from dynaplan.precision import tf32_matmuls
from dynaplan.rollout import collect_random

ENV = "Pendulum-v1"
SEED_NET: dict = {}  # the seed's 512-256 BatchNorm MLP (MLP defaults)
PETS_NET = {"hidden": (200, 200, 200, 200), "batch_norm": False, "activation": "silu"}


@dataclass(frozen=True)
class Setting:
    name: str
    planner: str  # "cem" or "random"
    num_sequences: int
    horizon: int
    iterations: int
    elites: int
    net: dict = field(default_factory=dict)
    learned_reward: bool = True
    seed_planner: str | None = None  # name of the seed_reference function to compare
    members: int = 0  # > 0: a GaussianEnsemble of this many members (net: its hidden sizes)
    particles: int = 1  # per candidate sequence, TS-inf (ensembles only)


SETTINGS = (
    Setting("a_seed_cem", "cem", 100, 15, 5, 10, SEED_NET, True, "cem_control"),
    Setting("b_seed_random", "random", 100, 15, 1, 1, SEED_NET, True, "random_control"),
    # PETS-sized planner (Chua et al. 2018) through one 4x200 MLP, known reward
    Setting("c_pets_sized", "cem", 500, 30, 5, 50, PETS_NET, False, None),
    # the published PETS setting whole: 5 members of 4x200 SiLU units, 20 particles TS-inf
    # (20x setting c's rows: about 2.5 s per call on a 2-core CPU, so a GPU setting)
    Setting("d_pets_paper", "cem", 500, 30, 5, 50, PETS_NET, False, None, 5, 20),
)
CPU_SETTINGS = ("a_seed_cem", "b_seed_random", "c_pets_sized")  # the default off a GPU


def setting_named(name: str) -> Setting:
    """The setting of SETTINGS called `name`."""
    return next(s for s in SETTINGS if s.name == name)


def random_data(n_transitions: int, seed: int = 0) -> ReplayBuffer:
    env, spec = make_env(ENV)
    env.action_space.seed(seed)
    buf = ReplayBuffer(spec.obs_dim, spec.action_dim, capacity=n_transitions)
    episodes = -(-n_transitions // 200)
    collect_random(env, buf, episodes, seed, progress=False)
    return buf


def fitted_models(buf: ReplayBuffer, net: dict) -> tuple[DynamicsModel, RewardModel]:
    """Models with normalizers and BatchNorm statistics from one short fit on `buf`."""
    torch.manual_seed(0)
    dyn, rew = DynamicsModel(buf.obs_dim, buf.action_dim, **net), RewardModel(
        buf.obs_dim, buf.action_dim, **net)
    fitter = ModelFitter(dyn, rew, lr=3e-4, epochs=1, batch_size=2000, input_noise=0.001)
    fitter.fit(buf, buf.split(0.2, np.random.default_rng(0)), torch.Generator().manual_seed(0))
    return dyn, rew


def ensemble_dynamics(setting: Setting, buf: ReplayBuffer, device: torch.device):
    """An untrained ensemble with normalizers fitted to `buf` (the timing does not depend on
    the weights), planned through by TS-inf with a generator on `device`."""
    torch.manual_seed(0)
    ens = GaussianEnsemble(buf.obs_dim + buf.action_dim, buf.obs_dim, setting.members,
                           hidden=setting.net["hidden"], activation=setting.net["activation"])
    ens.input_norm.fit(torch.as_tensor(np.concatenate([buf.obs, buf.action], 1)))
    ens.output_norm.fit(torch.as_tensor(buf.next_obs - buf.obs))
    return EnsembleDynamics(ens.to(device).eval(), "tsinf", setting.particles,
                            generator=torch.Generator(device=device).manual_seed(0))


def ensemble_gflop(setting: Setting, dynamics: EnsembleDynamics) -> tuple[float, list[int]]:
    """GFLOP of one plan call through the ensemble (each row runs through one member) and
    the shape [E, rows per member, h, h] of its hidden layers."""
    ens = dynamics.ensemble
    per_row = sum(2 * layer.weight[0].numel() for layer in [*ens.hidden_layers, ens.head])
    rows = setting.num_sequences * setting.particles
    gflop = rows * setting.horizon * setting.iterations * per_row / 1e9
    h = setting.net["hidden"][0]
    return gflop, [setting.members, rows // setting.members, h, h]


def flops_per_row(*models) -> int:
    """Forward FLOPs of one input row through each of the MLP models, each counted at its
    own output width (not padded to the widest, as one FusedMLPs of them stores them)."""
    return sum(FusedMLPs([m]).flops_per_row() for m in models)


def plan_gflop(setting: Setting, dyn: DynamicsModel, rew: RewardModel) -> float:
    """GFLOP of one plan call through one dynamics MLP: every candidate runs the dynamics
    network at each horizon step and, with a learned reward, the reward network too."""
    per_row = flops_per_row(dyn, rew) if setting.learned_reward else flops_per_row(dyn)
    return setting.num_sequences * setting.iterations * setting.horizon * per_row / 1e9


def fit_gflop_per_epoch(train_rows: int, valid_rows: int, epochs: int, per_row: int) -> float:
    """GFLOP of one epoch of a fit of `epochs` epochs: forward + backward ~ 3x the forward
    FLOPs per training row, and one forward pass over the validation rows per fit."""
    return (3 * train_rows + valid_rows / epochs) * per_row / 1e9


def build(setting: Setting, dyn, rew, device: torch.device, compile: bool,
          cuda_graph: bool = False, kernel: str = "auto"):
    # run_bench's tf32 block sets cuBLAS; the Triton kernel takes the setting from here
    tf32 = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    objective = ModelObjective(dyn, rew if setting.learned_reward else known_reward(ENV),
                               compile=compile, tf32=tf32, kernel=kernel)
    return setting_planner(setting, objective, device, cuda_graph)


def setting_planner(setting: Setting, objective, device: torch.device, cuda_graph: bool = False):
    """The setting's planner over `objective`, its generator seeded 0 on `device`."""
    spec = make_env(ENV)[1]
    options: dict = {"num_sequences": setting.num_sequences}
    if setting.planner == "cem":
        options.update(num_iterations=setting.iterations, num_elites=setting.elites)
    planner = make_planner(setting.planner, objective, spec.action_low, spec.action_high,
                           setting.horizon, torch.Generator(device=device).manual_seed(0),
                           **options)
    return GraphedPlanner(planner) if cuda_graph else planner


def load_seed_reference(path: Path):
    spec = importlib.util.spec_from_file_location("seed_reference", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ConfigError(f"seed reference not found: {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_models(ref, buf: ReplayBuffer, dyn, rew):
    """The seed's FeedforwardModels with dynaplan's weights and fitted sklearn scalers."""
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([buf.obs, buf.action], 1)
    scalers = (StandardScaler().fit(x), StandardScaler().fit(buf.next_obs - buf.obs),
               StandardScaler().fit(buf.reward[:, None]))
    models = []
    for ours, out_dim in ((dyn, buf.obs_dim), (rew, 1)):
        theirs = ref.FeedforwardModel(buf.obs_dim + buf.action_dim, out_dim)
        theirs.mlp.load_state_dict(ours.net.state_dict())
        models.append(theirs)
    return models, scalers


def setting_models(setting: Setting, buf: ReplayBuffer, device: torch.device):
    """(dynamics MLP, reward MLP, what the setting plans through) on `device`, in eval
    mode: the dynamics MLP itself, or for an ensemble setting its EnsembleDynamics (the
    MLPs are then the seed's, for the seed comparison's shapes)."""
    dyn, rew = fitted_models(buf, setting.net if not setting.members else SEED_NET)
    dyn.to(device).eval()
    rew.to(device).eval()
    planned = ensemble_dynamics(setting, buf, device) if setting.members else dyn
    return dyn, rew, planned


def bench_setting(setting, buf, device, calls, warmup, ref, compile, cuda_graph=False,
                  kernel: str = "auto") -> dict:
    dyn, rew, planned = setting_models(setting, buf, device)
    planner = build(setting, planned, rew, device, compile, cuda_graph, kernel)
    kernel = getattr(planner, "planner", planner).objective.kernel  # "auto" resolved
    obs_np = buf.obs[0]
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
    batch_size = 2000
    fitter = ModelFitter(dyn, rew, lr=3e-4, epochs=epochs, batch_size=batch_size,
                         input_noise=0.001)
    split = buf.split(0.2, np.random.default_rng(0))
    gen = torch.Generator().manual_seed(0)
    hidden = list(dyn.net.hidden[:2])  # the widest layer: [batch, 512] x [512, 256]
    probes = {"square": square_probe(device),
              "layer": MatmulProbe(batch_size, hidden[0], hidden[1], device=device)}
    times: dict[str, list[float]] = {k: [] for k in probes}
    seconds = []
    for _ in range(fits):
        time_interleaved(probes, probes_per_fit, into=times)
        seconds.append(fitter.fit(buf, split, gen).seconds)
    time_interleaved(probes, probes_per_fit, into=times)
    gflop = fit_gflop_per_epoch(len(split.train), len(split.valid), epochs,
                                flops_per_row(dyn, rew))
    out = {"transitions": n, "train_rows": len(split.train), "valid_rows": len(split.valid),
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
              tf32: bool = False, kernel: str = "auto") -> dict:
    """All figures of `dynaplan bench`. settings: names from SETTINGS (default: all of
    them on a GPU, CPU_SETTINGS on a CPU); cuda_graph: plan through GraphedPlanner and
    time the plain planner beside it; tf32: every float32 matmul on a GPU (plans, floor
    probes and fits alike) on TF32 tensor cores, else in full float32; kernel: how the
    rollouts run, torch ops or one kernel a call (planners/objective.py KERNELS; a kernel's
    plan calls are timed beside the torch path's)."""
    if settings is None:
        settings = tuple(s.name for s in SETTINGS) if device.type == "cuda" else CPU_SETTINGS
    ref = load_seed_reference(seed_reference) if seed_reference else None
    buf = random_data(2000)
    results = []
    with tf32_matmuls(tf32):
        for setting in SETTINGS:
            if setting.name not in settings:
                continue
            echo(f"bench {setting.name} ...")
            results.append(bench_setting(setting, buf, device, calls, warmup, ref, compile,
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
        # the median of the square probes' rates beside each setting and the fits
        "square_matmul_gflops": float(np.median(
            [r["square_gflops"] for r in results] + [fit["square_gflops"]])),
        "settings": results,
        "mpc_steps_per_s": steps_per_s,
        "fit": fit,
    }


def format_table(report: dict) -> str:
    kernel = report.get("rollout_kernel", "torch")
    lines = [f"dynaplan bench: torch {report['torch']}, {report['threads']} threads, "
             f"{report['device']}, {report['date']}"
             + (", CUDA graphs" if report.get("cuda_graph") else "")
             + (", TF32 matmuls" if report.get("tf32") else "")
             + (f", rollout kernel {kernel}" if kernel != "torch" else ""),
             f"square matmul: {report['square_matmul_gflops']:.1f} GFLOP/s (median); "
             "both rates of each row timed between its plan calls",
             "| setting | ms p50 | ms p99 | GFLOP/call | square GFLOP/s | layer GFLOP/s | "
             "floor ms | ratio to floor | seed ms p50 | speedup vs seed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["settings"]:
        seed = (f"{r['seed_ms_p50']:.1f} | {r['speedup_vs_seed']:.1f}x"
                if "seed_ms_p50" in r else "- | -")
        lines.append(f"| {r['setting']} | {r['ms_p50']:.2f} | {r['ms_p99']:.2f} | "
                     f"{r['gflop_per_call']:.3f} | {r['square_gflops']:.1f} | "
                     f"{r['layer_gflops']:.1f} | "
                     f"{r['floor_ms']:.2f} | {r['ratio_to_floor']:.2f} | {seed} |")
    for r in report["settings"]:
        if "eager_ms_p50" in r:
            lines.append(f"{r['setting']}: without the CUDA graph {r['eager_ms_p50']:.2f} ms "
                         f"p50, so the graph is {r['speedup_vs_eager']:.1f}x faster")
        if "torch_ms_p50" in r:
            lines.append(f"{r['setting']}: through torch ops {r['torch_ms_p50']:.2f} ms p50 "
                         f"(timed beside it), so the {r['rollout_kernel']} kernel is "
                         f"{r['speedup_vs_torch']:.2f}x faster")
    fit = report["fit"]
    lines.append(f"MPC loop (setting a): {report['mpc_steps_per_s']:.1f} env steps/s")
    lines.append(f"fit: {fit['s_per_epoch']:.3f} s/epoch on {fit['transitions']} transitions, "
                 f"floor {fit['floor_s']:.3f} s, ratio {fit['ratio_to_floor']:.2f} (square "
                 f"{fit['square_gflops']:.1f}, layer {fit['layer_gflops']:.1f} GFLOP/s "
                 "between the fits)")
    return "\n".join(lines)


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
