"""What a checkpoint of a run holds, captured from the live objects and put back.

    state.json (JSON)                           tensors.pt (tensors only)
      config, device                              dynamics, reward: state_dicts (weights,
      metrics: the metrics.csv rows so far          normalizers, BatchNorm statistics,
                                                    an ensemble's kept members)
      episodes: the episodes.csv rows so far      optimizers: the Adam state_dicts
      rng.split, rng.env, rng.action_space:       rng.torch (global), rng.fit, rng.act,
        numpy bit-generator states                  rng.eval, rng.particles_act,
                                                    rng.particles_eval: torch generator states
      planner: null (slot for a warm start)       plan_ms: every plan-call time so far
      counters: wall_s, dropped_random_episodes

Everything an iteration draws from is here, so an iteration run after `restore` gives
the same numbers as it did in the run that wrote the checkpoint. The environment needs
only its generators: iterations run whole episodes and start each with a reset. The
agents' warm start is reset at every episode start, so `planner` is null at an iteration
boundary; it is the place for planner state that outlives an episode, if one ever does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from dynaplan.checkpoint import Checkpoint
from dynaplan.config import TrainConfig, from_dict, to_dict
from dynaplan.errors import CheckpointError, ConfigError
from dynaplan.types import Optimizer


@dataclass
class Generators:
    """Every random generator of a run: torch's global one (weight init), a numpy one
    (train/valid split), one torch generator each for fitting, acting and evaluating,
    two on the run's device for an ensemble's particles (member draws, state noise) when
    acting and evaluating, and the environment's and its action space's."""

    split: np.random.Generator
    fit: torch.Generator
    act: torch.Generator
    eval: torch.Generator
    particles_act: torch.Generator
    particles_eval: torch.Generator
    env: gym.Env

    @classmethod
    def seeded(cls, seed: int, device: torch.device, env: gym.Env) -> Generators:
        """All derived from `seed` (the environment's own is seeded by its first reset)."""
        torch.manual_seed(seed)
        env.action_space.seed(seed)
        return cls(split=np.random.default_rng(seed),
                   fit=torch.Generator().manual_seed(seed),
                   act=torch.Generator(device=device).manual_seed(seed + 1),
                   eval=torch.Generator(device=device).manual_seed(seed + 2),
                   particles_act=torch.Generator(device=device).manual_seed(seed + 3),
                   particles_eval=torch.Generator(device=device).manual_seed(seed + 4),
                   env=env)

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        numpy_states = {
            "split": self.split.bit_generator.state,
            "env": self.env.unwrapped.np_random.bit_generator.state,
            "action_space": self.env.action_space.np_random.bit_generator.state,
        }
        torch_states = {"torch": torch.get_rng_state(), "fit": self.fit.get_state(),
                        "act": self.act.get_state(), "eval": self.eval.get_state(),
                        "particles_act": self.particles_act.get_state(),
                        "particles_eval": self.particles_eval.get_state()}
        return numpy_states, torch_states

    def restore(self, numpy_states: dict[str, Any], torch_states: dict[str, Any]) -> None:
        self.split.bit_generator.state = numpy_states["split"]
        self.env.unwrapped.np_random.bit_generator.state = numpy_states["env"]
        self.env.action_space.np_random.bit_generator.state = numpy_states["action_space"]
        self.fit.set_state(torch_states["fit"])
        self.act.set_state(torch_states["act"])
        self.eval.set_state(torch_states["eval"])
        for name in ("particles_act", "particles_eval"):  # absent from checkpoints written
            if name in torch_states:  # before ensembles existed (which never used them)
                getattr(self, name).set_state(torch_states[name])
        torch.set_rng_state(torch_states["torch"])


@dataclass
class History:
    """What a run has logged so far (rewritten into metrics.csv and episodes.csv on
    resume, so rows of an iteration after the last checkpoint disappear)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    episode_rows: list[list[Any]] = field(default_factory=list)
    plan_ms: list[float] = field(default_factory=list)
    counters: dict[str, float] = field(
        default_factory=lambda: {"wall_s": 0.0, "dropped_random_episodes": 0})


def capture(
    config: TrainConfig,
    device: torch.device,
    models: Sequence[nn.Module],
    optimizers: Sequence[Optimizer],
    generators: Generators,
    history: History,
    termination: tuple[nn.Module, Optimizer] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state.json part, tensors.pt part) of the run as it is now; `termination`: a
    learned termination model and its optimizer, where the run has one."""
    numpy_states, torch_states = generators.state()
    dynamics, reward = models
    json_part = {
        "config": to_dict(config),
        "device": device.type,
        "metrics": history.rows,
        "episodes": history.episode_rows,
        "rng": numpy_states,
        "planner": None,
        "counters": history.counters,
    }
    tensors = {
        "dynamics": dynamics.state_dict(),
        "reward": reward.state_dict(),
        "optimizers": [opt.state_dict() for opt in optimizers],
        "rng": torch_states,
        "plan_ms": torch.tensor(history.plan_ms, dtype=torch.float64),
    }
    if termination is not None:
        model, optimizer = termination
        tensors["termination"] = {"model": model.state_dict(),
                                  "optimizer": optimizer.state_dict()}
    return json_part, tensors


def restore(
    checkpoint: Checkpoint,
    config: TrainConfig,
    device: torch.device,
    models: Sequence[nn.Module],
    optimizers: Sequence[Optimizer],
    generators: Generators,
    dims: tuple[int, int] | None = None,
    termination: tuple[nn.Module, Optimizer] | None = None,
) -> History:
    """Put `checkpoint` into freshly built models, optimizers and generators; return the
    history it holds. The generators come last: building the models drew from torch's.
    Anything that does not fit the run (its device, its options, the shapes of its
    tensors, the types of its rows and counters, its buffer's (obs, action) `dims`, a
    learned `termination` model and optimizer the run has and the checkpoint lacks) is a
    one-line CheckpointError, and the objects may then be half restored: rebuild them
    before trying another checkpoint."""
    state, tensors = checkpoint.state, checkpoint.tensors
    where = f"checkpoint {checkpoint.path}"
    if state.get("device") != device.type:
        raise CheckpointError(f"{where} was written on {state.get('device')}, this run would "
                              f"use {device.type}; resume on the same device")
    # options added since the checkpoint was written take their defaults; a flat config
    # of an older dynaplan is migrated
    try:
        saved = from_dict(state.get("config") or {}, source=where)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    if dataclasses.replace(saved, iterations=config.iterations) != config:
        raise CheckpointError(f"{where} was written with other options than the run's "
                              "config.json")
    history = _history(checkpoint, where)
    buffer = checkpoint.buffer
    if dims is not None and (buffer.obs_dim, buffer.action_dim) != dims:
        raise CheckpointError(f"{where}: its buffer holds {buffer.obs_dim} observations and "
                              f"{buffer.action_dim} actions a step, the run {dims[0]} and "
                              f"{dims[1]}")
    if len(buffer) != history.rows[-1]["env_steps"]:
        raise CheckpointError(f"{where}: its buffer holds {len(buffer)} transitions, its "
                              f"metrics {history.rows[-1]['env_steps']}")
    dynamics, reward = models
    try:
        dynamics.load_state_dict(tensors["dynamics"])
        reward.load_state_dict(tensors["reward"])
        for opt, opt_state in zip(optimizers, tensors["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        if termination is not None:
            termination[0].load_state_dict(tensors["termination"]["model"])
            termination[1].load_state_dict(tensors["termination"]["optimizer"])
        generators.restore(state["rng"], tensors["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"{where} does not fit this run: {first}") from None
    dynamics.eval()
    reward.eval()
    if termination is not None:
        termination[0].eval()
    return history


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _history(checkpoint: Checkpoint, where: str) -> History:
    """The logged rows and counters of a checkpoint, once each has the type it must."""
    state, tensors = checkpoint.state, checkpoint.tensors
    rows, episodes, counters = state.get("metrics"), state.get("episodes"), state.get("counters")
    plan_ms = tensors.get("plan_ms")
    n = checkpoint.iteration + 1
    if (not isinstance(rows, list) or len(rows) != n
            or not all(isinstance(r, dict) and r.get("iteration") == i
                       and all(isinstance(k, str) and _number(v) for k, v in r.items())
                       for i, r in enumerate(rows))
            or not _number(rows[-1].get("env_steps"))):
        raise CheckpointError(f"{where}: its metrics are not one row of numbers per "
                              f"iteration 0..{n - 1}")
    if not isinstance(episodes, list) or not all(
            isinstance(e, list) and len(e) == 5 and all(_number(v) for v in e)
            for e in episodes):
        raise CheckpointError(f"{where}: its episode rows are not rows of 5 numbers")
    if (not isinstance(counters, dict)
            or not all(_number(counters.get(k)) for k in ("wall_s", "dropped_random_episodes"))):
        raise CheckpointError(f"{where}: its counters are not wall_s and "
                              "dropped_random_episodes numbers")
    if not isinstance(plan_ms, torch.Tensor) or plan_ms.dim() != 1:
        raise CheckpointError(f"{where}: its plan times are not a list of numbers")
    return History(rows=list(rows), episode_rows=list(episodes), plan_ms=plan_ms.tolist(),
                   counters=dict(counters))
