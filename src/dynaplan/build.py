"""Turn a TrainConfig into objects: the one place where configuration meets classes."""

from __future__ import annotations

import torch

from dynaplan.config import PLANNER_OPTIONS, TrainConfig
from dynaplan.envs import EnvSpec, known_reward
from dynaplan.errors import ConfigError
from dynaplan.models import DynamicsModel, RewardModel
from dynaplan.planners import ModelObjective, Planner, make_planner


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but CUDA is not available (use cpu or auto)")
    return torch.device(name)


def build_models(spec: EnvSpec, device: torch.device) -> tuple[DynamicsModel, RewardModel]:
    """Fresh models; their initial weights come from torch's global generator, which
    the loop seeds once per run."""
    dynamics = DynamicsModel(spec.obs_dim, spec.action_dim).to(device)
    reward = RewardModel(spec.obs_dim, spec.action_dim).to(device)
    return dynamics, reward


def build_objective(
    config: TrainConfig, dynamics: DynamicsModel, reward: RewardModel
) -> ModelObjective:
    """Plan with the learned reward model or, with `reward: known`, the env's own."""
    reward_fn = known_reward(config.env) if config.reward == "known" else reward
    return ModelObjective(dynamics, reward_fn)


def warm_start(config: TrainConfig) -> bool | None:
    """The agent's warm_start argument: None lets the planner decide."""
    return {"auto": None, "on": True, "off": False}[config.warm_start]


def build_planner(
    config: TrainConfig, objective, spec: EnvSpec, generator: torch.Generator
) -> Planner:
    """The configured planner through planners.make_planner (which lists every option)."""
    options: dict[str, object] = {"num_sequences": config.num_sequences}
    if config.planner in ("cem", "icem", "mppi"):
        options["num_iterations"] = config.cem_iterations
    if config.planner in ("cem", "icem"):
        options["num_elites"] = config.num_elites
    for name in PLANNER_OPTIONS:  # only the options the user set; make_planner refuses
        if getattr(config, name) is not None:  # one the chosen planner does not take
            options[name] = getattr(config, name)
    return make_planner(
        config.planner,
        objective,
        spec.action_low,
        spec.action_high,
        config.horizon,
        generator,
        **options,
    )
