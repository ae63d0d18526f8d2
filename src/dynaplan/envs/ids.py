"""The names of a run's environment, as config.env records them, and the id part of one.

    Pendulum-v1                 a gymnasium id
    mypkg.envs:MyEnv-v0         gymnasium's own form: import mypkg.envs (it registers the
                                id), then make the id
    mypkg.envs:make_env         a factory: a callable of that module that returns an env
    from-python:MyEnv-v0        an env factory or instance passed from Python that no name
                                can make again; it must be passed again (envs/source.py)

Known rewards, terminations and observation wrappers are keyed by the id part
(`env_id`): "mypkg.envs:MyEnv-v0" and "from-python:MyEnv-v0" are "MyEnv-v0".
"""

from __future__ import annotations

PYTHON = "from-python"
"""The module part of an environment passed from Python: a hyphen keeps it from ever
naming an importable module."""


def env_id(env: str) -> str:
    """The id part of an environment name: what follows "module:", or the whole name."""
    return env.partition(":")[2] if ":" in env else env


def passed_from_python(env: str) -> bool:
    """Whether `env` names an environment that only the Python caller can pass again."""
    return env.startswith(PYTHON + ":")
