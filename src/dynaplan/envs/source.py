"""Where a run's environments come from: the name its config records (`env`, envs/ids.py)
with its `env_kwargs`, or what a Python caller passes (an id string, an env factory, an
env instance). Every place that makes a run's environments (the training loop, eval,
`load_agent`, sweeps) does it through `env_source(...)`, so they all make the same one.

What a run records for what it was given (`recorded_name`):

    "Pendulum-v1", "mypkg:MyEnv-v0", "mypkg:make_env"   the string itself
    a factory importable as module:qualname            "module:qualname" (the CLI makes it
                                                       again: eval, --resume, sweeps)
    any other factory (a lambda, a closure, a partial) "from-python:<its name>"
    an env instance                                    "from-python:<its id or class>"

A "from-python:" run trains as any other, but only the caller can make its environment
again: eval and resume need it passed again (`env=`). An instance is one environment:
the training env of a run (evaluation episodes need a factory); dynaplan never closes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import gymnasium as gym

from dynaplan.envs.ids import PYTHON, passed_from_python
from dynaplan.envs.make import EnvFactory, EnvSpec, factory_label, make_env, prepare, resolve
from dynaplan.errors import ConfigError

EnvGiven: TypeAlias = str | EnvFactory | gym.Env
"""What a Python caller may pass as a run's environment."""


class EnvSource:
    """Makes a run's environments: from a name or factory (each call a new env), or hands
    out the one instance a caller passed."""

    def __init__(self, name: str, kwargs: Mapping[str, Any], maker: str | EnvFactory | None,
                 instance: gym.Env | None = None) -> None:
        self.name = name
        """What the run records as its env (config.env)."""
        self.kwargs = dict(kwargs)
        self.maker = maker
        self.instance = instance
        self._handed_out = False

    def make(self, render: bool = False,
             max_episode_steps: int | None = None) -> tuple[gym.Env, EnvSpec]:
        """A new environment (make_env's `render` and `max_episode_steps`); from an
        instance: the instance itself, once (in a TimeLimit for `max_episode_steps`)."""
        if self.instance is None:
            assert self.maker is not None
            return make_env(self.maker, render, max_episode_steps, self.kwargs)
        if self._handed_out:
            raise ConfigError(f"environment {self.name!r} is an env instance passed from "
                              "Python: it serves as one env only (a run's training env); "
                              "pass a factory, a callable that returns a new env, for "
                              "evaluation episodes")
        self._handed_out = True
        env = self.instance
        if max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, max_episode_steps)
        return prepare(env, self.name, owned=False)

    def describe(self) -> EnvSpec:
        """The environment's dims and bounds; nothing is kept open (an instance is only
        looked at)."""
        if self.instance is not None:
            return prepare(self.instance, self.name, owned=False)[1]
        env, spec = self.make()
        env.close()
        return spec

    def close(self, env: gym.Env) -> None:
        """Close an env this source made (a caller's instance stays open)."""
        if self.instance is None:
            env.close()


def recorded_name(given: EnvGiven) -> str:
    """What a run records as its env for `given` (see the module's docstring)."""
    if isinstance(given, str):
        return given
    if isinstance(given, gym.Env):
        label = given.spec.id if given.spec is not None else type(given.unwrapped).__name__
        return f"{PYTHON}:{label}"
    return _importable_name(given) or f"{PYTHON}:{factory_label(given)}"


def _importable_name(factory: EnvFactory) -> str | None:
    """"module:qualname" when importing that name gives `factory` back, else None."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__",
                                                                      None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__" \
            or "<" in qualname:
        return None
    name = f"{module}:{qualname}"
    try:
        return name if resolve(name) is factory else None
    except ConfigError:
        return None


def env_source(recorded: str, kwargs: Mapping[str, Any],
               given: EnvGiven | None = None) -> EnvSource:
    """The source of a run's environments: `given` from Python (None: the run's recorded
    name, which must not be a "from-python:" one), with the run's env kwargs (passed to
    gym.make or the factory; an instance takes none)."""
    if given is None:
        if passed_from_python(recorded):
            resolve(recorded)  # the one-line refusal that says to pass it again
        return EnvSource(recorded, kwargs, recorded)
    if isinstance(given, str):
        if not given:
            raise ConfigError("env must be a non-empty string")
        return EnvSource(given, kwargs, given)
    name = recorded_name(given)
    if isinstance(given, gym.Env):
        if kwargs:
            raise ConfigError(f"env_kwargs cannot be applied to an env instance ({name}); "
                              "pass a factory that takes them, or make the instance with "
                              "them")
        return EnvSource(name, kwargs, None, instance=given)
    if callable(given):
        return EnvSource(name, kwargs, given)
    raise ConfigError(f"env must be an id string, an env factory or a gymnasium Env, got a "
                      f"{type(given).__name__}")
