"""What `dynaplan bench` times: its settings, the models and planners it builds for
them (on random Pendulum-v1 data), their FLOPs counted from the layer shapes, and the
seed's own code loaded to run beside them.

The seed's code (seed_reference.py, the seed exercise as a plain script) does not ship
with the package: it is the file `--seed-reference` names, else `$DYNAPLAN_SEED_REFERENCE`,
else ../shared/anchors/seed_reference.py from a development checkout. Without it, or
without scikit-learn (its scalers), bench times dynaplan alone after a one-line note.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dynaplan import accel
from dynaplan.accel.fused import FusedMLPs
from dynaplan.accel.graphed import GraphedPlanner
from dynaplan.build import build_fit_parts
from dynaplan.config import TrainConfig
from dynaplan.data import ReplayBuffer
from dynaplan.envs import make_env, resolve_reward, resolve_termination
from dynaplan.episodes import collect_random
from dynaplan.errors import ConfigError, quoted
from dynaplan.models import DynamicsModel, EnsembleDynamics, GaussianEnsemble, RewardModel, fit
from dynaplan.objective import ModelObjective
from dynaplan.planners import make_planner

ENV = "Pendulum-v1"
SEED_REFERENCE_VARIABLE = "DYNAPLAN_SEED_REFERENCE"
CHECKOUT_SEED_REFERENCE = Path("../shared/anchors/seed_reference.py")
"""Where a development checkout keeps the seed's code, from the project folder."""
SEED_NET: dict = {}  # the seed's 512-256 BatchNorm MLP (MLP defaults)
PETS_NET = {"hidden": (200, 200, 200, 200), "batch_norm": False, "activation": "silu"}
PRESET_NET = {"hidden": (64, 64, 64), "batch_norm": False, "activation": "relu"}
"""The ensemble members of the `pets`, `icem` and `mppi` presets on a small environment."""


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
    env: str = ENV  # whose random data, action bounds and planning functions
    reward: str = "known"  # without learned_reward: envs.resolve_reward's name
    termination: str = "none"  # envs.resolve_termination's name
    batch: int = 1  # start states planned in one call (an evaluation of `batch` episodes)


SETTINGS = (
    Setting("a_seed_cem", "cem", 100, 15, 5, 10, SEED_NET, True, "cem_control"),
    Setting("b_seed_random", "random", 100, 15, 1, 1, SEED_NET, True, "random_control"),
    # PETS-sized planner (Chua et al. 2018) through one 4x200 MLP, known reward
    Setting("c_pets_sized", "cem", 500, 30, 5, 50, PETS_NET, False, None),
    # the published PETS setting whole: 5 members of 4x200 SiLU units, 20 particles TS-inf
    # (20x setting c's rows: about 2.5 s per call on a 2-core CPU, so a GPU setting)
    Setting("d_pets_paper", "cem", 500, 30, 5, 50, PETS_NET, False, None, 5, 20),
    # the `pets` preset's plan call on Pendulum-v1 (5 members of 3 x 64 ReLU units, 5
    # particles TS-inf, CEM 100 x 3, horizon 15, known reward), and its evaluation call:
    # 10 episodes planned at once
    Setting("e_pets_pendulum", "cem", 100, 15, 3, 10, PRESET_NET, False, None, 5, 5),
    Setting("f_pets_pendulum_eval10", "cem", 100, 15, 3, 10, PRESET_NET, False, None, 5, 5,
            batch=10),
    # the `pets` preset's plan call on InvertedPendulum-v5: CEM 300 x 5, horizon 30, the
    # shaped reward and the known termination (needs MuJoCo: skipped with a note without)
    Setting("g_pets_inverted_pendulum", "cem", 300, 30, 5, 10, PRESET_NET, False, None, 5, 5,
            env="InvertedPendulum-v5", reward="shaped", termination="known"),
)
CPU_SETTINGS = ("a_seed_cem", "b_seed_random", "c_pets_sized", "e_pets_pendulum",
                "f_pets_pendulum_eval10", "g_pets_inverted_pendulum")  # the default off a GPU


def setting_named(name: str) -> Setting:
    """The setting of SETTINGS called `name`."""
    return next(s for s in SETTINGS if s.name == name)


def random_data(n_transitions: int, seed: int = 0, env_id: str = ENV) -> ReplayBuffer:
    env, spec = make_env(env_id)
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
    fit(build_fit_parts(TrainConfig(), dyn, rew), buf.tensors(),
        buf.split(0.2, np.random.default_rng(0)), 1, torch.Generator().manual_seed(0))
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
    rows = setting.num_sequences * setting.particles * setting.batch
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
    reward = rew if setting.learned_reward else resolve_reward(setting.env, setting.reward)
    assert reward is not None, f"{setting.env} has no {setting.reward} reward"
    termination = resolve_termination(setting.env, setting.termination)
    rollout = accel.select_rollout(kernel, dyn, reward, termination, compile=compile,
                                   tf32=tf32)
    objective = ModelObjective(dyn, reward, termination, rollout=rollout)
    return setting_planner(setting, objective, device, cuda_graph)


def setting_planner(setting: Setting, objective, device: torch.device, cuda_graph: bool = False):
    """The setting's planner over `objective`, its generator seeded 0 on `device`."""
    spec = make_env(setting.env)[1]
    options: dict = {"num_sequences": setting.num_sequences}
    if setting.planner == "cem":
        options.update(num_iterations=setting.iterations, num_elites=setting.elites)
    planner = make_planner(setting.planner, objective, spec.action_low, spec.action_high,
                           setting.horizon, torch.Generator(device=device).manual_seed(0),
                           **options)
    return GraphedPlanner(planner) if cuda_graph else planner


def seed_reference_path(given: str | None) -> tuple[Path | None, str | None]:
    """(the seed's code, None), or (None, a one-line note why the comparison is skipped).
    `given`: --seed-reference (None: not given; '': skip, without a note); else
    $DYNAPLAN_SEED_REFERENCE, else the checkout's file if present. A file named by the
    flag or the variable that is not there is a ConfigError."""
    if given == "":
        return None, None
    source = "--seed-reference"
    if given is None:
        given, source = os.environ.get(SEED_REFERENCE_VARIABLE) or None, \
            f"${SEED_REFERENCE_VARIABLE}"
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ConfigError(f"{source}: seed reference not found: {path} (pass "
                              "--seed-reference '' to time without the seed's code)")
        return path, None
    if CHECKOUT_SEED_REFERENCE.is_file():
        return CHECKOUT_SEED_REFERENCE, None
    return None, ("timing without the seed's code (the seed comparison): no seed reference "
                  f"found; give --seed-reference FILE or set ${SEED_REFERENCE_VARIABLE}")


def load_seed_reference(path: Path):
    """(the seed's code as a module, None), or (None, a one-line note) when a package it
    needs is missing: scikit-learn, whose scalers it and `seed_models` use."""
    skip = "timing without the seed's code (the seed comparison): it needs"
    try:
        import sklearn.preprocessing  # noqa: F401
    except ImportError:
        return None, f"{skip} scikit-learn (pip install scikit-learn, or dynaplan[seedref])"
    spec = importlib.util.spec_from_file_location("seed_reference", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ConfigError(f"seed reference not found: {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as err:
        name = err.name or str(err)
        return None, f"{skip} the module {quoted(name)}, which is not installed"
    except Exception as err:  # the file is not the seed's code
        text = str(err).strip()
        why = type(err).__name__ + (f": {text.splitlines()[0]}" if text else "")
        raise ConfigError(f"seed reference {path} could not be loaded: {why}") from None
    return module, None


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
