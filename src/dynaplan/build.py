"""Turn a TrainConfig into objects: the one place where configuration meets classes."""

from __future__ import annotations

import torch

from dynaplan.config import GPU_ONLY, PLANNER_OPTIONS, SWITCH_OPTIONS, TrainConfig
from dynaplan.envs import EnvSpec, known_termination, planning_reward
from dynaplan.errors import ConfigError
from dynaplan.models import DynamicsModel, RewardModel
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.ensemble_fit import EnsembleFitter
from dynaplan.models.fit import ModelFitter
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.planners import ModelObjective, Planner, make_planner
from dynaplan.planners.graphed import GraphedPlanner
from dynaplan.planners.objective import kernel_unavailable


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but CUDA is not available (use cpu or auto)")
    return torch.device(name)


def require_device(config: TrainConfig, device: torch.device) -> None:
    """Refuse the GPU-only settings (GPU_ONLY) for a run that plans on `device` when that
    is not a CUDA device, the native kernel when it is, and either kernel where it cannot
    run (no triton package; no C compiler or CPU support for the native one)."""
    for name, value in GPU_ONLY.items():
        if getattr(config, name) == value and device.type != "cuda":
            raise ConfigError(f"--{name.replace('_', '-')} {value} needs a CUDA device, and "
                              f"this run plans on {device}")
    kernel = config.rollout_kernel
    if kernel == "native" and device.type != "cpu":
        raise ConfigError(f"--rollout-kernel native runs on the CPU, and this run plans on "
                          f"{device} (add --device cpu)")
    if (reason := kernel_unavailable(kernel)) is not None:
        raise ConfigError(f"--rollout-kernel {kernel}: {reason}")


def build_models(
    spec: EnvSpec, device: torch.device, config: TrainConfig | None = None
) -> tuple[DynamicsModel | GaussianEnsemble, RewardModel]:
    """Fresh (dynamics, reward) models; their initial weights come from torch's global
    generator, which the loop seeds once per run. The dynamics model is the seed's MLP or,
    with `dynamics: ensemble`, a GaussianEnsemble of [obs, action] -> obs delta whose
    first `kept_members` members plan until a fit picks the best."""
    dynamics: DynamicsModel | GaussianEnsemble
    if config is not None and config.dynamics == "ensemble":
        dynamics = GaussianEnsemble(spec.obs_dim + spec.action_dim, spec.obs_dim,
                                    members=config.ensemble_size,
                                    hidden=(config.ensemble_hidden,) * config.ensemble_layers,
                                    activation=config.ensemble_activation)
        dynamics.elites = torch.arange(config.kept_members)
        dynamics = dynamics.to(device)
    else:
        dynamics = DynamicsModel(spec.obs_dim, spec.action_dim).to(device)
    reward = RewardModel(spec.obs_dim, spec.action_dim).to(device)
    return dynamics, reward


def build_fitter(
    config: TrainConfig, dynamics: DynamicsModel | GaussianEnsemble, reward: RewardModel
) -> ModelFitter:
    """MSE fitting of the MLPs; an ensemble gets its own NLL fitter (models/ensemble_fit)."""
    ensemble_fitter = None
    if isinstance(dynamics, GaussianEnsemble):
        ensemble_fitter = EnsembleFitter(dynamics, lr=config.ensemble_lr, epochs=config.epochs,
                                         batch_size=config.ensemble_batch_size,
                                         keep=config.kept_members)
    return ModelFitter(dynamics, reward, config.lr, config.epochs, config.batch_size,
                       config.input_noise, dynamics_fitter=ensemble_fitter)


def build_objective(
    config: TrainConfig,
    dynamics: DynamicsModel | GaussianEnsemble,
    reward: RewardModel,
    generator: torch.Generator | None = None,
) -> ModelObjective:
    """Plan with the learned reward model or, with `reward: known` or `shaped`, the env's
    own reward or our planning reward for it (envs/rewards.py); stop returns at the
    env's known termination with `termination: known`. An ensemble plans
    through EnsembleDynamics, whose member draws and state noise come from `generator`
    (required then; on the CPU or the models' device, which keeps a plan call on a GPU).
    With `tf32: on` the rollouts multiply on TF32 tensor cores, with `rollout_kernel:
    triton` they run as one Triton kernel a call (both a CUDA device only), with
    `rollout_kernel: native` as one C kernel call (the CPU only)."""
    if config.reward == "learned":
        reward_fn = reward
    else:
        reward_fn = planning_reward(config.env, config.reward)
    termination = known_termination(config.env) if config.termination == "known" else None
    if config.termination == "known" and termination is None:
        raise ConfigError(f"{config.env} has no known termination")
    model: DynamicsModel | EnsembleDynamics
    if isinstance(dynamics, GaussianEnsemble):
        if generator is None:
            raise ValueError("an ensemble objective needs a torch.Generator")
        model = EnsembleDynamics(dynamics, config.propagation, config.particles,
                                 generator=generator)
    else:
        model = dynamics
    require_device(config, next(dynamics.parameters()).device)
    return ModelObjective(model, reward_fn, termination, tf32=config.tf32 == "on",
                          kernel=config.rollout_kernel)


def warm_start(config: TrainConfig) -> bool | None:
    """The agent's warm_start argument: None lets the planner decide."""
    return {"auto": None, "on": True, "off": False}[config.warm_start]


def build_planner(
    config: TrainConfig, objective, spec: EnvSpec, generator: torch.Generator
) -> Planner:
    """The configured planner through planners.make_planner (which lists every option);
    with `cuda_graph: on`, wrapped so that each plan call replays a CUDA graph."""
    options: dict[str, object] = {"num_sequences": config.num_sequences}
    if config.planner in ("cem", "icem", "mppi"):
        options["num_iterations"] = config.cem_iterations
    if config.planner in ("cem", "icem"):
        options["num_elites"] = config.num_elites
    for name in PLANNER_OPTIONS:  # only the options the user set; make_planner refuses
        value = getattr(config, name)  # one the chosen planner does not take
        if value is not None:
            options[name] = value == "on" if name in SWITCH_OPTIONS else value
    planner = make_planner(
        config.planner,
        objective,
        spec.action_low,
        spec.action_high,
        config.horizon,
        generator,
        **options,
    )
    if config.cuda_graph == "off":
        return planner
    require_device(config, generator.device)
    try:
        return GraphedPlanner(planner)  # type: ignore[return-value]
    except ValueError as exc:
        raise ConfigError(f"--cuda-graph on: {exc}") from None
