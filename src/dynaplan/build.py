"""Turn a TrainConfig into objects: the one place where configuration meets classes, and
where accelerators are chosen (accel.select_rollout, accel.select_fit_step, CUDA graphs).

Library classes take plain typed arguments; this module reads the configuration for
them. The model types a run can learn are the table `DYNAMICS` (types.DYNAMICS_MODELS).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from dynaplan import accel
from dynaplan.agent import MPCAgent
from dynaplan.config import TrainConfig
from dynaplan.envs import EnvSpec, resolve_reward, resolve_termination
from dynaplan.errors import ConfigError
from dynaplan.models import (
    Bootstrap,
    DeterministicEnsemble,
    DynamicsModel,
    Ensemble,
    EnsembleDynamics,
    FitPart,
    GaussianEnsemble,
    Minibatches,
    RewardModel,
)
from dynaplan.models.termination import TerminationModel
from dynaplan.objective import ModelObjective, termination_floor
from dynaplan.plan_memory import check_plan_memory
from dynaplan.planners import PLANNERS, Planner
from dynaplan.runstate import Generators
from dynaplan.types import (
    DYNAMICS_MODELS,
    Dynamics,
    Learnable,
    Objective,
    Optimizer,
    RewardFn,
    Rollout,
    TerminationFn,
)


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but CUDA is not available (use cpu or auto)")
    return torch.device(name)


def require_device(config: TrainConfig, device: torch.device) -> None:
    """Refuse, in one line, each accelerator the config asks for that cannot run on
    `device` in this process (accel.why_not)."""
    for kind, (name, value) in config.speed.accelerators().items():
        reason = accel.refusal(f"--{name.replace('_', '-')} {value}", kind, device)
        if reason is not None:
            if kind == "native" and device.type != "cpu":
                reason += " (add --device cpu)"
            raise ConfigError(reason)


# -- models -------------------------------------------------------------------------------

def _mlp(spec: EnvSpec, config: TrainConfig) -> nn.Module:
    return DynamicsModel(spec.obs_dim, spec.action_dim)


def _ensemble(kind: type[Ensemble]) -> Callable[[EnvSpec, TrainConfig], nn.Module]:
    def build(spec: EnvSpec, config: TrainConfig) -> nn.Module:
        e = config.model.ensemble
        return kind(spec.obs_dim + spec.action_dim, spec.obs_dim, members=e.size,
                    hidden=(e.hidden,) * e.layers, activation=e.activation, keep=e.kept)
    return build


DYNAMICS: dict[str, Callable[[EnvSpec, TrainConfig], nn.Module]] = {
    "mlp": _mlp,
    "ensemble": _ensemble(GaussianEnsemble),
    "deterministic-ensemble": _ensemble(DeterministicEnsemble),
}
"""Each dynamics model type by its `--dynamics` name: a fresh, learnable module."""
assert tuple(DYNAMICS) == DYNAMICS_MODELS


def build_models(spec: EnvSpec, device: torch.device,
                 config: TrainConfig) -> tuple[nn.Module, RewardModel]:
    """Fresh (dynamics, reward) models on `device`, dynamics first; their initial weights
    come from torch's global generator, which the loop seeds once per run."""
    dynamics = DYNAMICS[config.model.dynamics](spec, config).to(device)
    reward = RewardModel(spec.obs_dim, spec.action_dim).to(device)
    return dynamics, reward


TERMINATION_SEED = 0x7E5
"""A learned termination model's initial weights and fitting draws come from generators of
their own, derived from the run's seed, so adding one changes no other draw of a run."""


def learns_termination(config: TrainConfig) -> bool:
    """Whether the run has a termination model: `termination: learned`, or `auto` for an
    env with no known or registered termination function (envs/functions.py)."""
    t = config.model.termination
    return t == "learned" or (t == "auto" and resolve_termination(config.env, t) is None)


def build_termination(spec: EnvSpec, device: torch.device,
                      config: TrainConfig) -> TerminationModel | None:
    """A fresh termination model where the run learns one (initialized from a generator
    of its own), else None."""
    if not learns_termination(config):
        return None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + TERMINATION_SEED)
        model = TerminationModel(spec.obs_dim, spec.action_dim)
    return model.to(device)


def termination_fit_part(config: TrainConfig, model: TerminationModel) -> FitPart:
    """How a termination model is fitted: Adam on minibatches of 256 without input noise,
    on the run's train/validation split, with the reference gradient step."""
    return FitPart("termination", model, accel.select_optimizer(model.parameters(), 1e-3),
                   Minibatches(256))


def learns_reward(config: TrainConfig) -> bool:
    """Whether the planner plans with the learned reward model: not under the env's known,
    a shaped or a user's reward (envs/functions.py), where fitting it would be wasted."""
    return resolve_reward(config.env, config.model.reward) is None


def build_fit_parts(config: TrainConfig, dynamics: nn.Module,
                    reward: RewardModel) -> list[FitPart]:
    """What `models.fit` trains, reward first: the MLPs on shared minibatches with input
    noise (Adam), an ensemble on its own bootstrap (Adam with PETS's weight decay). With
    an ensemble, the reward model's epochs draw from the generator before the ensemble's
    bootstrap does, the order earlier versions drew in. The reward model is fitted only
    where the planner plans with it (`learns_reward`); checkpoints hold it either way."""
    m = config.model
    minibatches = Minibatches(m.batch_size, m.input_noise)
    parts = [FitPart("reward", reward, accel.select_optimizer(reward.parameters(), m.lr),
                     minibatches,
                     accel.select_fit_step, fitted=learns_reward(config))]
    if isinstance(dynamics, Ensemble):
        e = m.ensemble
        optimizer = accel.select_optimizer(dynamics.parameters(), e.lr, weight_decay=5e-5)
        parts.append(FitPart("dynamics", dynamics, optimizer, Bootstrap(e.size, e.batch_size),
                             accel.select_fit_step))
    else:
        learnable = cast(Learnable, dynamics)  # every DYNAMICS type is Learnable
        parts.append(FitPart("dynamics", learnable,
                             accel.select_optimizer(dynamics.parameters(), m.lr),
                             minibatches, accel.select_fit_step))
    return parts


def checkpoint_optimizers(parts: list[FitPart]) -> list[Optimizer]:
    """The parts' optimizers in the order checkpoints store them: dynamics, reward."""
    by_name = {p.name: p.optimizer for p in parts}
    return [by_name["dynamics"], by_name["reward"]]


# -- planning -----------------------------------------------------------------------------

def planning_dynamics(config: TrainConfig, dynamics: nn.Module,
                      generator: torch.Generator | None = None) -> Dynamics:
    """What the objective steps: the dynamics MLP itself, or an ensemble's propagation
    (its member draws and state noise from `generator`, required then: on the CPU or the
    models' device, which keeps a plan call on a GPU)."""
    if isinstance(dynamics, Ensemble):
        if generator is None:
            raise ValueError("an ensemble objective needs a torch.Generator")
        e = config.model.ensemble
        return EnsembleDynamics(dynamics, e.propagation, e.particles,
                                sample=dynamics.stochastic, generator=generator)
    return dynamics  # type: ignore[return-value]


def build_objective(config: TrainConfig, dynamics: nn.Module, reward: RewardModel,
                    generator: torch.Generator | None = None,
                    compile: bool = False) -> ModelObjective:
    """Plan with the reward and termination the config names (envs/functions.py: the
    learned reward model, the env's known or a shaped reward, a user's function; the
    known termination, a user's, or none); the rollouts run as `rollout_kernel` says
    (accel.select_rollout), on TF32 tensor cores with `tf32: on`."""
    m = config.model
    chosen = resolve_reward(config.env, m.reward)
    reward_fn = reward if chosen is None else chosen
    termination = resolve_termination(config.env, m.termination)  # learned: plugged in later
    planned = planning_dynamics(config, dynamics, generator)
    require_device(config, next(dynamics.parameters()).device)
    rollout = _rollout(config, planned, reward_fn, termination, compile)
    return ModelObjective(planned, reward_fn, termination, rollout=rollout)


def _rollout(config: TrainConfig, planned: Dynamics, reward_fn: RewardFn,
             termination: TerminationFn | None, compile: bool = False) -> Rollout:
    kernel = config.speed.rollout_kernel
    try:
        return accel.select_rollout(kernel, planned, reward_fn, termination,
                                    compile=compile, tf32=config.speed.tf32)
    except ValueError as err:
        raise ConfigError(f"--rollout-kernel {kernel}: {err}") from None


def plan_with_termination(config: TrainConfig, objective: ModelObjective,
                          termination: TerminationModel) -> None:
    """From now on `objective` stops its returns where the learned `termination` predicts
    the episode ends (once that model was fit on data holding a termination). The rollout
    is chosen again: one chosen without a termination may return only the sums."""
    if objective.termination is termination:
        return
    objective.termination = termination
    objective.rollout = _rollout(config, objective.dynamics, objective.reward, termination)
    objective.refresh()


def termination_value(config: TrainConfig, rewards: torch.Tensor) -> float:
    """The value of each step after a predicted termination, as the config says, from the
    per-step `rewards` of the data (objective.py)."""
    return termination_floor(rewards) if config.model.termination_value == "floor" else 0.0


def warm_start(config: TrainConfig) -> bool | None:
    """The agent's warm_start argument: None lets the planner decide."""
    return {"auto": None, "on": True, "off": False}[config.planner.warm_start]


def build_planner(config: TrainConfig, objective: Objective, spec: EnvSpec,
                  generator: torch.Generator) -> Planner:
    """The configured planner with its options; with `cuda_graph: on`, wrapped so that each
    plan call replays a CUDA graph."""
    p = config.planner
    planner = PLANNERS[p.name](objective, spec.action_low, spec.action_high, p.horizon,
                               generator, **dataclasses.asdict(p.options))
    if not config.speed.cuda_graph:
        return planner
    require_device(config, generator.device)
    from dynaplan.accel.graphed import GraphedPlanner

    try:
        return GraphedPlanner(planner)  # type: ignore[return-value]
    except ValueError as exc:
        raise ConfigError(f"--cuda-graph on: {exc}") from None


@dataclass
class RunParts:
    """Every object a run acts and learns with, built from its config.

    An ensemble's particles draw from their own generator per agent, so the acting and
    the evaluating agent each get an objective; the deterministic MLP's objective draws
    nothing and is shared."""

    dynamics: nn.Module
    reward: RewardModel
    fit: list[FitPart]
    objective: ModelObjective
    eval_objective: ModelObjective
    agent: MPCAgent
    eval_agent: MPCAgent
    termination: TerminationModel | None = None
    """The learned termination model, where the run learns one; its fit: `termination_fit`."""
    termination_fit: FitPart | None = None

    def objectives(self) -> list[ModelObjective]:
        """The acting objective and, where it is another one, the evaluating one."""
        if self.eval_objective is self.objective:
            return [self.objective]
        return [self.objective, self.eval_objective]

    def value_terminations(self, config: TrainConfig, rewards: torch.Tensor) -> None:
        """Value the steps after a predicted termination from the data's `rewards`."""
        for objective in self.objectives():
            objective.termination_value = termination_value(config, rewards)

    def plan_with_termination(self, config: TrainConfig) -> None:
        """Stop predicted returns at the learned termination once it was fit on data
        holding a termination (a no-op before, and for a run without one)."""
        model = self.termination
        if model is not None and bool(model.fitted):
            for objective in self.objectives():
                plan_with_termination(config, objective, model)


def build_run(config: TrainConfig, spec: EnvSpec, device: torch.device,
              generators: Generators) -> RunParts:
    """Models, their fit, and one agent each for acting and evaluating, drawing from the
    run's generators (runstate.Generators, seeded before this: the models' initial
    weights come from torch's global generator). Sizes whose plan call needs more memory
    than the device has free are refused first."""
    check_plan_memory(config, spec, device)
    dynamics, reward = build_models(spec, device, config)
    parts = build_fit_parts(config, dynamics, reward)
    objective = build_objective(config, dynamics, reward, generators.particles_act)
    eval_objective = objective
    if isinstance(objective.dynamics, EnsembleDynamics):
        eval_objective = build_objective(config, dynamics, reward, generators.particles_eval)
    start = warm_start(config)
    agent = MPCAgent(build_planner(config, objective, spec, generators.act), device, start)
    eval_agent = MPCAgent(build_planner(config, eval_objective, spec, generators.eval),
                          device, start)
    termination = build_termination(spec, device, config)
    termination_fit = None if termination is None else termination_fit_part(config, termination)
    return RunParts(dynamics, reward, parts, objective, eval_objective, agent, eval_agent,
                    termination, termination_fit)
