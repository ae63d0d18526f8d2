"""Create a gymnasium environment and describe it (dims and action bounds).

`make_env` takes what a run records as its environment (envs/ids.py): a gymnasium id,
gymnasium's own "module:EnvId" (the module is imported first, which registers the id),
"module:factory", or a factory itself (a callable that returns an env), with keyword
arguments for `gym.make(id, **kwargs)` or the factory. Any environment with Box
observation and action spaces works. A bad id, a module that does not import, kwargs the
environment does not take, or a space dynaplan cannot plan in becomes a `ConfigError`
with one line (and close names). Some environments get an observation wrapper
(envs/wrappers.py: HalfCheetah-v5 gains its x velocity as a last entry, so its reward is
known).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dynaplan.envs.ids import env_id, passed_from_python
from dynaplan.envs.wrappers import OBSERVATION_WRAPPERS
from dynaplan.errors import ConfigError

# Render without a display (pygame for classic control, EGL/OSMesa for MuJoCo).
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")

EnvFactory = Callable[..., gym.Env]
"""A callable that returns a new gymnasium Env; called with the run's env kwargs (and
render_mode="rgb_array" for the env that records videos, when it takes a render_mode)."""


@dataclass(frozen=True)
class EnvSpec:
    """What planners and models need to know about an environment."""

    env_id: str
    obs_dim: int
    action_dim: int
    action_low: np.ndarray  # [A]
    action_high: np.ndarray  # [A]


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`, for a one-line refusal."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _suggest(name: str, module: str | None = None) -> str:
    """Close registered ids: among those `module` registers first, if it registers any."""
    ids = list(gym.registry.keys())
    own = [i for i in ids if module is not None and _registered_by(gym.registry[i], module)]
    close = difflib.get_close_matches(name, own or ids, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _registered_by(spec: Any, module: str) -> bool:
    entry = spec.entry_point
    where = entry.partition(":")[0] if isinstance(entry, str) else getattr(entry, "__module__",
                                                                            "")
    return bool(where == module or str(where).startswith(module + "."))


def factory_label(factory: Callable[..., Any]) -> str:
    """A factory's name in messages: its qualified name, or its type's."""
    return str(getattr(factory, "__qualname__", type(factory).__name__))


def resolve(env: str) -> str | EnvFactory:
    """The registered gymnasium id, or the factory, that the name `env` stands for (a
    "module:..." name imports its module first), or a one-line ConfigError."""
    if passed_from_python(env):
        raise ConfigError(f"environment {env!r} was passed from Python and no name makes it "
                          "again: pass it again from Python (env=... of dynaplan.resume, "
                          "dynaplan.load, or dynaplan.runs.load_agent)")
    if ":" not in env:
        if env not in gym.registry:
            raise ConfigError(f"unknown environment id {env!r}{_suggest(env)}")
        return env
    module_name, _, name = env.partition(":")
    if not module_name or not name:
        raise ConfigError(f"environment {env!r} must be an id, or module:EnvId")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever the module raises while it imports: one line
        raise ConfigError(f"environment {env!r}: module {module_name!r} could not be "
                          f"imported: {first_line(exc)}{_in_this_folder(module_name)}") from None
    if name in gym.registry:
        return name
    found: Any = module
    for part in name.split("."):
        found = getattr(found, part, None)
    if callable(found):
        return found
    raise ConfigError(f"environment {env!r}: module {module_name!r} registers no environment "
                      f"id {name!r} and has no env factory of that name"
                      f"{_suggest(name, module_name)}")


def _in_this_folder(module_name: str) -> str:
    """A hint when the module that did not import lies in the working folder, which the
    `dynaplan` command does not put on sys.path."""
    top = module_name.split(".")[0]
    if Path(f"{top}.py").is_file() or Path(top, "__init__.py").is_file():
        return f" ({top} is in the current folder: run with PYTHONPATH=. or python -m dynaplan)"
    return ""


def make_env(env: str | EnvFactory, render: bool = False,
             max_episode_steps: int | None = None,
             kwargs: Mapping[str, Any] | None = None) -> tuple[gym.Env, EnvSpec]:
    """Make `env` (an id, "module:EnvId", "module:factory" or a factory), passing `kwargs`
    to `gym.make` or the factory. With `render`, frames come from `env.render()` as RGB
    arrays (a factory that takes no render_mode renders as it likes); with
    `max_episode_steps`, episodes are truncated after that many steps (an id's own limit is
    replaced, a factory's env is wrapped in a TimeLimit, which can only shorten it)."""
    name = env if isinstance(env, str) else factory_label(env)
    target = resolve(env) if isinstance(env, str) else env
    values = dict(kwargs or {})
    render_mode = "rgb_array" if render else None
    try:
        if isinstance(target, str):
            made = gym.make(target, render_mode=render_mode,
                            max_episode_steps=max_episode_steps, **values)
        else:
            if render and _takes(target, "render_mode"):
                values["render_mode"] = render_mode
            made = target(**values)
    except gym.error.DependencyNotInstalled as exc:
        raise ConfigError(f"environment {name!r} needs a missing package: {exc}") from None
    except TypeError as exc:  # gymnasium appends the whole kwargs again: said once here
        given = f" with env_kwargs {json.dumps(dict(kwargs))}" if kwargs else ""
        reason = first_line(exc).split(" was raised from the environment creator")[0]
        raise ConfigError(f"environment {name!r} could not be created{given}: "
                          f"{reason}") from None
    except Exception as exc:
        raise ConfigError(f"environment {name!r} could not be created: "
                          f"{first_line(exc)}") from None
    if not isinstance(made, gym.Env):
        raise ConfigError(f"env factory {name!r} returned a {type(made).__name__}, not a "
                          "gymnasium Env")
    if max_episode_steps is not None and not isinstance(target, str):
        made = gym.wrappers.TimeLimit(made, max_episode_steps)
    return prepare(made, name)


def _takes(factory: Callable[..., Any], parameter: str) -> bool:
    """Whether `factory` takes a keyword argument `parameter` (or any keyword)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read: do not guess
        return False
    return any(p.name == parameter or p.kind is p.VAR_KEYWORD for p in params)


def renders(env: gym.Env) -> bool:
    """Whether `env.render()` returns RGB frames (what videos are made of)."""
    return getattr(env, "render_mode", None) == "rgb_array"


def prepare(env: gym.Env, name: str, owned: bool = True) -> tuple[gym.Env, EnvSpec]:
    """`env` with its observation wrapper (if its id has one), and its description; an
    env whose spaces dynaplan cannot plan in is refused in one line (and closed if
    `owned`: one dynaplan made, not a caller's instance)."""
    close = env.close if owned else (lambda: None)
    if env_id(name) in OBSERVATION_WRAPPERS:
        env = OBSERVATION_WRAPPERS[env_id(name)](env)
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(act_space, gym.spaces.Box):
        close()
        raise ConfigError(
            f"environment {name!r} has a {type(act_space).__name__} action space; "
            "dynaplan plans in continuous (Box) action spaces only"
        )
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        close()
        raise ConfigError(
            f"environment {name!r} needs a flat Box observation space, "
            f"got {obs_space}"
        )
    if len(act_space.shape) != 1 or not (
        np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))
    ):
        close()
        raise ConfigError(f"environment {name!r} needs a flat, bounded Box action space")
    spec = EnvSpec(
        env_id=name,
        obs_dim=int(obs_space.shape[0]),
        action_dim=int(act_space.shape[0]),
        action_low=act_space.low.astype(np.float32),
        action_high=act_space.high.astype(np.float32),
    )
    return env, spec
