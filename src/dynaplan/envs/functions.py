"""Which reward and termination functions a run plans with: the words of `--reward` and
`--termination`, a user's `module:function`, and functions registered from Python.

    --reward       learned | known | shaped | module:function
    --termination  auto | none | known | learned | module:function

`resolve_reward` and `resolve_termination` are the one place each value becomes a
function (or None: a learned model, or no termination); config validation calls them,
so a bad value is refused before a run starts, and build.py calls them to plan. The
known functions are looked up by environment id (envs/ids.py `env_id`: for an `--env
module:EnvId`, the EnvId), in envs/rewards.py and envs/terminations.py, which
`register_reward` / `register_termination` extend for this process.

A `module:function` is imported as Python would from the current folder or the installed
packages (the current folder is put last on `sys.path` when it is not there: the
`dynaplan` command does not put it there itself). The option keeps the string as given,
so config.json holds it and eval, resume and sweeps import it again.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from dynaplan.envs.ids import env_id as id_of
from dynaplan.envs.rewards import KNOWN_REWARDS, SHAPED_REWARDS, known_reward
from dynaplan.envs.terminations import KNOWN_TERMINATIONS
from dynaplan.errors import ConfigError, quoted
from dynaplan.types import REWARDS, TERMINATIONS, RewardFn, TerminationFn

FUNCTION_FORM = "module:function"
"""How the choices name a user's function, in messages and --help."""


def is_function_spec(value: object) -> bool:
    """Whether an option value names a function (`module:function`) rather than a word."""
    return isinstance(value, str) and ":" in value


def describe(fn: Any) -> str:
    """A function's name as `module:qualname` (what a message about it says)."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{module}:{name}" if module and name else repr(fn)


def import_function(spec: str, option: str) -> Any:
    """The callable `spec` ("module:function", the function may be dotted: a class's
    static method) names, or a one-line ConfigError naming `option` and why."""
    module_name, _, attribute = spec.rpartition(":")
    where = f"{option} {spec}"
    if not module_name or not attribute:
        raise ConfigError(f"{where}: write it as {FUNCTION_FORM}, e.g. mypkg.rewards:reward")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise ConfigError(f"{where}: no module named {missing!r} (run from the folder that "
                          "holds it, or install it)") from None
    except Exception as exc:
        raise ConfigError(f"{where}: importing {module_name} failed: "
                          f"{type(exc).__name__}: {_first_line(exc)}") from None
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ConfigError(f"{where}: module {module_name} has no attribute {attribute!r}")
        value = getattr(value, part)
    if not callable(value):
        raise ConfigError(f"{where}: {attribute} is not callable (it is a "
                          f"{type(value).__name__})")
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def check_choice(option: str, value: object, words: tuple[str, ...]) -> None:
    """Refuse a value that is neither one of `words` nor a `module:function`."""
    if not isinstance(value, str) or (value not in words and not is_function_spec(value)):
        raise ConfigError(f"{option} must be one of {', '.join(words)} or {FUNCTION_FORM}, "
                          f"got {quoted(value)}")


# -- the two resolutions -------------------------------------------------------------------

def resolve_reward(env: str, value: str) -> RewardFn | None:
    """The reward function `--reward value` plans with in `env` (None: the learned reward
    model), or a one-line ConfigError."""
    check_choice("reward", value, REWARDS)
    if is_function_spec(value):
        return import_function(value, "reward")
    key = id_of(env)
    if value == "known":
        return known_reward(key)
    if value == "shaped":
        if key not in SHAPED_REWARDS:
            raise ConfigError(f"reward shaped: no shaped reward for {key}; shaped rewards "
                              f"exist for {', '.join(sorted(SHAPED_REWARDS))} (use --reward "
                              "known, learned or module:function)")
        return SHAPED_REWARDS[key]
    return None  # learned: the reward model


def resolve_termination(env: str, value: str) -> TerminationFn | None:
    """The termination function `--termination value` plans with in `env`, or None, or a
    one-line ConfigError.

    none: None (never); known: the env's known or registered function (refused if it has
    none); module:function: that function; auto: the known one where the env has one,
    else None; learned: None. Where this gives None for auto or learned, the run learns a
    termination model and plans with it once fitted (build.learns_termination)."""
    check_choice("termination", value, TERMINATIONS)
    if is_function_spec(value):
        return import_function(value, "termination")
    key = id_of(env)
    if value == "known" and key not in KNOWN_TERMINATIONS:
        raise ConfigError(
            f"termination known: {key} has no known termination (known for "
            f"{', '.join(sorted(KNOWN_TERMINATIONS))}); give one with --termination "
            "module:function or dynaplan.register_termination(env_id, fn), or use "
            "--termination none")
    if value in ("known", "auto"):
        return KNOWN_TERMINATIONS.get(key)  # auto without one: learned (build.py)
    return None  # none; learned: the termination model (build.py)


# -- registration from Python --------------------------------------------------------------

def register_reward(env_id: str, fn: RewardFn) -> None:
    """Make `fn` the known reward of `env_id` in this process (`--reward known`),
    replacing any before it. `fn(obs [..., O], action [..., A], next_obs [..., O])`
    returns the reward [...] as a float tensor, batched over any leading dims."""
    _register(KNOWN_REWARDS, "register_reward", env_id, fn)


def register_termination(env_id: str, fn: TerminationFn) -> None:
    """Make `fn` the known termination of `env_id` in this process (`--termination
    known`, and `auto`), replacing any before it. `fn(obs, action, next_obs)` returns a
    bool tensor [...]: True where the episode ends after that transition."""
    _register(KNOWN_TERMINATIONS, "register_termination", env_id, fn)


def _register(table: dict[str, Any], name: str, env_id: object, fn: object) -> None:
    if not isinstance(env_id, str) or not env_id:
        raise TypeError(f"{name}: env_id must be a non-empty string (a gymnasium id such "
                        f"as 'Hopper-v5'), got {quoted(env_id)}")
    if not callable(fn):
        raise TypeError(f"{name}: fn must be callable as fn(obs, action, next_obs), got "
                        f"{quoted(fn)}")
    table[id_of(env_id)] = fn
