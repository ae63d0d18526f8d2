"""The Python entry points of a training run: `train` and `resume` a run folder, `load` it
back as an `Agent` that acts.

    run = dynaplan.train(env="Pendulum-v1", preset="pets", iterations=3)
    agent = run.load()                    # or dynaplan.load("runs/...")
    env = agent.make_env()
    obs, _ = env.reset(seed=0)
    action = agent.act(obs)               # [O] -> [A];  [B, O] -> [B, A]

Thin wrappers: the run is `loop.train` / `loop.resume`, the options are those the command
line takes (config/flat.py, as keyword arguments), the agent is `runs.load_agent`'s
MPCAgent. Shape letters as in types.py (B environments, O observation, A action).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike

from dynaplan.agent import MPCAgent
from dynaplan.config import OPTIONS, TrainConfig, config_from_values
from dynaplan.config.flat import ALIASES, replace_values
from dynaplan.envs import EnvGiven, EnvSpec, recorded_name
from dynaplan.envs.ids import passed_from_python
from dynaplan.episodes import evaluate
from dynaplan.errors import ConfigError, quoted
from dynaplan.planners import Planner
from dynaplan.runs import LoadedRun, load_agent, load_run_config

__all__ = ["Agent", "Run", "load", "resume", "train"]


@dataclass(frozen=True)
class Run:
    """A run folder written by `train` or `resume`, and its summary.json (the summary's
    keys: docs/architecture.md)."""

    run_dir: Path
    summary: dict[str, Any] = field(repr=False)
    already_complete: bool = False
    """True when `resume` found every iteration done and ran none."""
    env: EnvGiven | None = field(default=None, repr=False, compare=False)
    """The environment the run was given from Python, if any: `load` acts in it again."""

    @property
    def config(self) -> TrainConfig:
        """The run's options (its config.json)."""
        return load_run_config(self.run_dir)

    def load(self, device: str = "cpu", iteration: int | None = None,
             env: EnvGiven | None = None, seed: int = 0, **options: Any) -> Agent:
        """This run as an acting agent: `dynaplan.load(run.run_dir, ...)`, in the
        environment the run was given from Python unless `env` says otherwise."""
        return load(self.run_dir, device, iteration, env if env is not None else self.env,
                    seed, **options)


def _option_names(options: dict[str, Any], where: str) -> None:
    """Refuse an unknown option in one line, with the closest names."""
    for key in options:
        name = key.replace("-", "_")
        if name in OPTIONS or name in ALIASES:
            continue
        close = difflib.get_close_matches(name, list(OPTIONS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"{where}: unknown option {quoted(key)}{hint}; the options are "
                          "those of `dynaplan train --help`, with underscores")


def make_config(config: TrainConfig | None = None, env: EnvGiven | None = None,
                **options: Any) -> TrainConfig:
    """The TrainConfig that `train(config, env=env, **options)` runs: `options` (as users
    write them: `horizon=20`, `preset="pets"`) over `config`, or over the defaults. An
    environment given as a factory or instance is named as the run will record it
    (envs/source.py), so presets and known functions see its id."""
    _option_names(options, "dynaplan.train")
    if env is not None:
        options["env"] = env if isinstance(env, str) else recorded_name(env)
        _sizable(options)
    if config is None:
        return config_from_values(options, source="dynaplan.train")
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"dynaplan.train: config must be a TrainConfig, got a "
                          f"{type(config).__name__}")
    if "preset" in options:
        raise ConfigError("dynaplan.train: a preset fills in options, not a TrainConfig; "
                          "pass preset=... without config")
    return replace_values(config, **options) if options else config


def _sizable(options: dict[str, Any]) -> None:
    """A preset sizes its values from the environment, which it makes by name: refuse, in
    words that say what to do, a preset for a factory or instance no name makes again
    (envs/source.py) unless its id has tuned values."""
    from dynaplan.presets import PRESETS, preset_values

    name, preset = options["env"], options.get("preset")
    if preset not in PRESETS or not passed_from_python(name):
        return
    try:
        preset_values(preset, name, OPTIONS["env_kwargs"].coerce(options.get("env_kwargs") or {}))
    except ConfigError:
        raise ConfigError(f"dynaplan.train: preset {preset} is sized from the environment, "
                          f"made by its name, and no name makes {name} again; pass a factory "
                          "importable as module:function, or options without a preset (sizes: "
                          "dynaplan presets --env ID)") from None


def _echo(progress: bool) -> Any:
    if not progress:
        return lambda *args, **kwargs: None
    from tqdm.auto import tqdm

    return tqdm.write  # lines that keep the progress bar whole


def train(config: TrainConfig | None = None, *, out: str | Path | None = None,
          env: EnvGiven | None = None, progress: bool = True, keep_checkpoints: int = 2,
          **options: Any) -> Run:
    """Train a run into a new folder and return it.

    config: a TrainConfig, or None for the defaults (the seed exercise); `options` are the
    options `dynaplan train` takes as flags, with underscores (`iterations=3`,
    `preset="pets"`, `num_sequences=200`), over `config`. A bad name or value is a
    one-line ConfigError naming it, raised before anything is written.
    out: the run folder (default: runs/<env>__<planner>__s<seed>__<time> under the
    current folder); it must not hold a run already.
    env: an id ("Pendulum-v1", "mypkg:MyEnv-v0"), a factory (a callable that returns a
    new gymnasium Env, called once per env the run needs) or an Env instance (the
    training env only: no evaluation episodes); docs/environments.md.
    progress: progress bars and a line per iteration; False prints nothing.
    """
    from dynaplan.loop import train as train_loop

    run_config = make_config(config, env, **options)
    given = None if env is None or isinstance(env, str) else env
    result = train_loop(run_config, Path(out) if out is not None else None, progress,
                        _echo(progress), keep_checkpoints, env=given)
    return Run(result.run_dir, result.summary, result.already_complete, given)


def resume(run_dir: str | Path, *, iterations: int | None = None,
           env: EnvGiven | None = None, progress: bool = True,
           keep_checkpoints: int = 2) -> Run:
    """Continue the run in `run_dir` from its newest readable checkpoint, with its own
    options; `iterations` above the run's extends it. `env`: the run's environment again,
    where it was given from Python as a factory or instance. A complete run with no more
    iterations asked runs nothing (`Run.already_complete`)."""
    from dynaplan.loop import resume as resume_loop

    folder = Path(run_dir)
    config = load_run_config(folder)
    if iterations is not None:
        config = replace_values(config, iterations=iterations)
    result = resume_loop(folder, config, progress, _echo(progress), keep_checkpoints, env=env)
    given = None if isinstance(env, str) else env
    return Run(result.run_dir, result.summary, result.already_complete, given)


class Agent:
    """A trained run's planner acting in its environment: observations in, actions out,
    replanning at every call (model-predictive control).

    Built by `load`; thin over the run's MPCAgent (`.mpc`), which keeps the warm start
    (the previous plan, shifted) between calls: call `reset()` at every episode start."""

    def __init__(self, run_dir: Path, loaded: LoadedRun) -> None:
        self.run_dir = run_dir
        self._loaded = loaded
        self.mpc: MPCAgent = loaded.agent
        """The MPCAgent underneath: latency_ms(), last_predicted_return."""

    @property
    def config(self) -> TrainConfig:
        """The run's options (with any `load` options applied)."""
        return self._loaded.config

    @property
    def planner(self) -> Planner:
        """The planner, over the run's learned (or known) model."""
        return self.mpc.planner

    @property
    def spec(self) -> EnvSpec:
        """The environment's sizes O, A and action bounds [A]."""
        return self._loaded.spec

    @property
    def iteration(self) -> int:
        """The iteration whose checkpoint was loaded."""
        return int(self._loaded.checkpoint.iteration)

    @property
    def env_steps(self) -> int | None:
        """The run's environment steps at the end of that iteration."""
        return self._loaded.env_steps

    def act(self, obs: ArrayLike) -> np.ndarray:
        """obs [O] -> action [A], or obs [B, O] (B environments at once) -> actions
        [B, A]; float32, inside the action bounds."""
        x = np.asarray(obs, dtype=np.float32)
        size = self.spec.obs_dim
        if x.ndim not in (1, 2) or x.shape[-1] != size:
            raise ValueError(f"obs must have shape [{size}] or [B, {size}], got "
                             f"{list(x.shape)}")
        return self.mpc.act(x)

    def reset(self) -> None:
        """Start a new episode: the next `act` plans without the previous plan."""
        self.mpc.reset()

    def make_env(self, render: bool = False) -> gym.Env:
        """A new environment of the run (as it trained: its id, env kwargs and observation
        wrapper; or the env `load` was given). render: it renders rgb_array frames."""
        return self._loaded.env.make(render=render)[0]

    def evaluate(self, episodes: int = 1) -> list[float]:
        """Returns of `episodes` episodes in new environments, reset with the fixed seeds
        `dynaplan eval` uses, planned as one batch (as `dynaplan eval` does)."""
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise ConfigError(f"episodes must be a positive integer, got {quoted(episodes)}")
        source = self._loaded.env
        envs: list[gym.Env] = []
        try:
            for _ in range(episodes):
                envs.append(source.make()[0])
            return evaluate(envs, self.mpc)
        finally:
            for made in envs:
                source.close(made)

    def __repr__(self) -> str:
        return (f"Agent({str(self.run_dir)!r}, iteration={self.iteration}, "
                f"planner={self.config.planner.name!r})")


def load(run_dir: str | Path, device: str = "cpu", iteration: int | None = None,
         env: EnvGiven | None = None, seed: int = 0, **options: Any) -> Agent:
    """A run folder's models and planner, loaded from its newest checkpoint (or the one
    written after `iteration`), as an acting Agent on `device` ("cpu", "cuda", "auto").

    env: the environment to act in instead of the run's own (an id, a factory or an
    instance); a run whose environment was given from Python needs it again. seed: the
    planner's sampling. options: option values that replace the run's before anything is
    built (planner settings: `num_sequences=500`, `horizon=30`)."""
    _option_names(options, "dynaplan.load")
    folder = Path(run_dir)
    loaded = load_agent(folder, device, seed, iteration, override=options or None, env=env)
    return Agent(folder, loaded)
