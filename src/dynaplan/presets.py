"""Named bundles of train options (`--preset`) for any environment with Box spaces, in the
names users write (config/flat.py turns them into a TrainConfig).

Precedence: built-in defaults (the seed exercise) < preset < config file < flags. A preset
only fills options the user did not give, so any of its values can be overridden.

- `pets`, `icem`, `mppi`: a probabilistic ensemble (Chua et al. 2018) planned through by
  CEM, iCEM (Pinneri et al. 2020) or MPPI, sized for a 2-core CPU, with the environment's
  known reward where one exists, little random data and short iterations, so learning is
  judged per environment step.
- `pets-paper`: the published PETS planner and model (population 500, 50 elites, horizon
  30, 5 members of 4 x 200 units, 20 particles, TS-inf); meant for a GPU.

What a preset sets for an environment comes in layers, the later winning:

1. its shared values (`_ENSEMBLE` and `_PLANNERS`, or `_PETS_PAPER`);
2. for an environment without a tuned entry: values sized by the rules below from its
   observation size O, action size A and episode limit T (`describe_env`; pets-paper's
   own model and horizon win over the rules' ones);
3. for the environments in `_ENVS`: the values they were tuned with, which take the place
   of the rules (so their runs stay as the benchmarks measured them), and `_OVERRIDES`
   per preset and environment.

The sizing rules, each for environments nobody has tuned (no rule names an environment);
they aim at a 5,000-step run on a MuJoCo task (Hopper-v5, Walker2d-v5, Ant-v5) within
about 10-15 minutes on 2 CPU cores:

- `horizon` 15: PETS plans 30 steps ahead on a GPU; a plan call's cost is linear in the
  horizon, and 15 is what the CPU presets plan with on Pendulum-v1 and HalfCheetah-v5.
- `ensemble_hidden` 64 when the model's input O + A is at most 16, else 128: a hidden
  layer several times wider than a small input, and at least as wide as all but the
  largest ones (Ant-v5's 113 fit in 128); these are the widths tuned for the classic
  tasks (3-5 inputs) and HalfCheetah-v5 (24). Not wider: on a CPU a plan call's cost grows
  with the square of the width (pets-paper's 200 is one flag away).
- `num_sequences` 100 (10 elites) x 3 iterations for every action size: the samples do
  not grow with A because, without a known reward, the learned reward network (the
  seed's 512-256 MLP, not sized by any option) already costs more per plan call than the
  ensemble (Hopper-v5: about 60 of 85 ms on one thread; docs/presets.md); 100 x 3 is
  also what HalfCheetah-v5's 6 action dimensions were tuned with.
- `steps_per_iteration` 200 and, where T > 200, `train_episode_steps` 200: the models
  are refit every ~200 steps from the start, instead of after each whole 1,000-step
  episode; evaluation episodes keep the environment's own limit.
- `random_trajectories` ceil(200 / min(T, 200)): about one iteration of random steps
  before the first fit (1 episode for T >= 200), so data is spent on planned actions.
- `iterations` ceil((5,000 - random steps) / 200), the random steps counted as
  random_trajectories x min(T, 200): about 5,000 environment steps in all (24
  iterations); an iteration ends with its last whole episode, so it may collect more.
- `epochs` 20: every fit passes over all data so far; 20 passes (as the tuned 1,000-step
  environments) keep a fit at a few seconds at 5,000 transitions.
- `reward` known where dynaplan knows the environment's reward (envs.KNOWN_REWARDS),
  else learned: the known one is exact and costs nothing to fit.

The termination is left at its default, `auto`: the known termination where dynaplan has
one, else one learned from the data where the data hold a termination, else none.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from dynaplan.config.mapping import JsonMapping
from dynaplan.envs.ids import env_id
from dynaplan.errors import ConfigError

PRESETS = ("pets", "icem", "mppi", "pets-paper")

SUMMARY = {
    "pets": "a probabilistic ensemble (Chua et al. 2018) planned through by CEM, for a "
            "2-core CPU",
    "icem": "the same ensemble planned through by iCEM (Pinneri et al. 2020), for a "
            "2-core CPU",
    "mppi": "the same ensemble planned through by MPPI, for a 2-core CPU",
    "pets-paper": "the published PETS planner and model (Chua et al. 2018), for a GPU",
}

# Per environment: the data schedule, reward, termination and any size that differs from
# the shared ensemble and planner settings below (these win over them and take the place
# of the sizing rules).
_ENVS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(random_trajectories=1, steps_per_iteration=200, iterations=9,
                        horizon=15, reward="known", epochs=40),
    # its own reward (1 per upright step) ties every candidate that survives the horizon,
    # and the cart drifts into the end of its rail even when planning through the true
    # simulator (H 10: 81-137 of 300 steps; H 30: 356 of 1000); the shaped planning reward
    # with H 30 balanced 1000 of 1000 there (benchmarks/ip_true_model.py, BENCHMARKS.md 4)
    "InvertedPendulum-v5": dict(random_trajectories=5, steps_per_iteration=200, iterations=6,
                                horizon=30, reward="shaped", termination="known", epochs=40),
    "MountainCarContinuous-v0": dict(random_trajectories=2, steps_per_iteration=999,
                                     iterations=5, horizon=30, reward="known",
                                     termination="known", epochs=20),
    # known reward through the x velocity dynaplan appends to the observation
    # (envs/wrappers.py); horizon 15, half of PETS's 30: about 55 ms per plan call on one
    # thread of this CPU (30: about 120 ms), so a 5,000-step run takes minutes
    "HalfCheetah-v5": dict(random_trajectories=1, steps_per_iteration=1000, iterations=4,
                           horizon=15, reward="known", epochs=20, ensemble_hidden=128),
}

# The model of the CPU presets: small enough that a Pendulum-v1 plan call (100 sequences x
# 5 particles x 15 steps x 3 iterations) takes tens of ms on 2 cores.
_ENSEMBLE = dict(dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
                 ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf",
                 particles=5)

_PLANNERS: dict[str, dict[str, Any]] = {
    "pets": dict(planner="cem", num_sequences=100, num_elites=10, num_iterations=3,
                 alpha=0.1, warm_start="on"),
    "icem": dict(planner="icem", num_sequences=100, num_elites=10, num_iterations=3),
    "mppi": dict(planner="mppi", num_sequences=100, num_iterations=3),
}

# Chua et al. 2018: population 500, 50 elites, horizon 30, 5 members of 4 x 200 swish
# units, 20 particles, TS-inf; for a GPU.
_PETS_PAPER = dict(planner="cem", num_sequences=500, num_elites=50, num_iterations=5,
                   alpha=0.1, horizon=30, dynamics="ensemble", ensemble_size=5,
                   ensemble_hidden=200, ensemble_layers=4, ensemble_activation="silu",
                   ensemble_batch_size=32, propagation="tsinf", particles=20, warm_start="on")


# per (preset, environment): values that win over both tables above
_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    # among tied candidates the mean of the final distribution is a calm action, an
    # arbitrary best sample a violent one; 100 x 3 samples let the cart drift into the end
    # of its rail where 300 x 5 keep it near the middle (about 200 ms per plan call on one
    # thread), and 200-step training episodes refit the model every ~200 steps instead of
    # after each 1,000-step balanced episode (InvertedPendulum, BENCHMARKS.md section 4)
    ("pets", "InvertedPendulum-v5"): dict(return_mean="on", num_sequences=300,
                                          num_iterations=5, train_episode_steps=200,
                                          iterations=9),
    # refit every 100 steps on training episodes cut at 100 (the random one too): twice
    # the fits while they are cheap, twice the start states. Over 5 seeds -200 came after
    # 400 steps (median) and 600 at worst, against 600 and 1,000 refitting every 200 steps
    # (BENCHMARKS.md section 9); 100 random + 19 x 100 = the same 2,000 steps in all
    ("pets", "Pendulum-v1"): dict(steps_per_iteration=100, train_episode_steps=100,
                                  iterations=19),
}

# -- the sizing rules (module docstring) ---------------------------------------------------

BLOCK = 200
"""Environment steps between refits: steps_per_iteration and the training episodes' cap."""
BUDGET = 5_000
"""Environment steps of a whole run, random ones included."""
NARROW_INPUT = 16
"""Model inputs (O + A) up to which the ensemble is 64 wide; above, 128."""
HORIZON, EPOCHS = 15, 20

RULES = (
    ("horizon", f"{HORIZON}"),
    ("ensemble_hidden", f"64 when O + A <= {NARROW_INPUT}, else 128"),
    ("num_sequences", "100 (10 elites) x 3 iterations, for every action size A"),
    ("steps_per_iteration", f"{BLOCK}"),
    ("train_episode_steps", f"{BLOCK} when T > {BLOCK}, else the environment's limit"),
    ("random_trajectories", f"ceil({BLOCK} / min(T, {BLOCK}))"),
    ("iterations", f"ceil(({BUDGET:,} - random_trajectories x min(T, {BLOCK})) / {BLOCK})"),
    ("epochs", f"{EPOCHS}"),
    ("reward", "known where dynaplan knows the environment's reward, else learned"),
)
"""Each sized option and its rule, as `dynaplan presets` lists them."""


@dataclass(frozen=True)
class EnvShape:
    """What the sizing rules read from an environment."""

    obs_dim: int
    action_dim: int
    max_episode_steps: int | None
    """The environment's episode limit T (its TimeLimit); None: no limit."""


NO_KWARGS = JsonMapping()


@functools.lru_cache(maxsize=64)
def describe_env(env: str, kwargs: JsonMapping = NO_KWARGS) -> EnvShape:
    """Create `env` (an id or "module:EnvId", with `kwargs` for gym.make) once (a bad id
    or space: one-line ConfigError), read its sizes and episode limit, and close it. The
    only place the presets create an environment."""
    from dynaplan.envs import make_env

    made, spec = make_env(env, kwargs=kwargs)
    try:
        limit = getattr(getattr(made, "spec", None), "max_episode_steps", None)
    finally:
        made.close()
    return EnvShape(spec.obs_dim, spec.action_dim, int(limit) if limit else None)


def sized_values(shape: EnvShape, known_reward: bool) -> dict[str, tuple[Any, str]]:
    """The rules' values for an environment of `shape`: option -> (value, why)."""
    inputs = shape.obs_dim + shape.action_dim
    limit = shape.max_episode_steps
    episode = min(limit, BLOCK) if limit else BLOCK
    random_trajectories = math.ceil(BLOCK / episode)
    random_steps = random_trajectories * episode
    out: dict[str, tuple[Any, str]] = {
        "horizon": (HORIZON, "half of PETS's 30"),
        "ensemble_hidden": (64 if inputs <= NARROW_INPUT else 128,
                            f"model input O + A = {inputs} "
                            f"{'<=' if inputs <= NARROW_INPUT else '>'} {NARROW_INPUT}"),
        "steps_per_iteration": (BLOCK, f"refit every ~{BLOCK} steps"),
        "random_trajectories": (random_trajectories,
                                f"{random_trajectories} x at most {episode} random steps "
                                "before the first fit"),
        "iterations": (math.ceil((BUDGET - random_steps) / BLOCK),
                       f"about {BUDGET:,} environment steps in all"),
        "epochs": (EPOCHS, "each fit passes over all data so far"),
        "reward": (("known", "dynaplan knows its reward") if known_reward else
                   ("learned", "no known reward")),
    }
    if limit is None or limit > BLOCK:
        out["train_episode_steps"] = (BLOCK, f"its episodes of "
                                      f"{limit if limit else 'unlimited'} steps cut to {BLOCK}")
    return out


@dataclass(frozen=True)
class Setting:
    """One value a preset sets, and where it comes from."""

    value: Any
    source: str
    """'shared' (the preset's own), 'sized' (a rule) or 'tuned' (the environment's entry)."""
    why: str = ""


def tuned_envs() -> tuple[str, ...]:
    """The environments whose values were tuned (they take no sizing rule)."""
    return tuple(_ENVS)


def _check_name(name: str) -> None:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")


def shared_values(name: str) -> dict[str, Any]:
    """What preset `name` sets for every environment (unless a tuned entry says else)."""
    _check_name(name)
    return dict(_PETS_PAPER) if name == "pets-paper" else {**_ENSEMBLE, **_PLANNERS[name]}


def preset_settings(name: str, env: str,
                    kwargs: JsonMapping = NO_KWARGS) -> dict[str, Setting]:
    """Every option preset `name` sets for environment `env` (made with `kwargs`), with
    its source; an environment without a tuned entry is created once (describe_env) to
    size them. Tuned entries and known rewards go by the id part of "module:EnvId"."""
    shared = shared_values(name)
    sized: dict[str, tuple[Any, str]] = {}
    key = env_id(env)
    if key in _ENVS:
        layers = [(_ENVS[key], "tuned"), (_OVERRIDES.get((name, key), {}), "tuned")]
    else:
        from dynaplan.envs import KNOWN_REWARDS

        sized = sized_values(describe_env(env, kwargs), key in KNOWN_REWARDS)
        layers = [({k: v for k, (v, _) in sized.items()}, "sized")]
    out = {k: Setting(v, "shared") for k, v in shared.items()}
    for values, source in layers:
        for key, value in values.items():
            why = sized[key][1] if source == "sized" else ""
            out[key] = Setting(value, source, why)
    if name == "pets-paper":  # the published planner and model win over every layer
        out.update({k: Setting(v, "shared") for k, v in _PETS_PAPER.items()})
    return out


def preset_values(name: str, env: str,
                  kwargs: JsonMapping = NO_KWARGS) -> dict[str, Any]:
    """The options preset `name` sets for environment `env` (made with `kwargs`)."""
    return {k: s.value for k, s in preset_settings(name, env, kwargs).items()}


# -- what a run's preset set (printed at its start, preset.json in its folder) -----------

def applied(name: str, env: str, run_values: dict[str, Any],
            kwargs: JsonMapping = NO_KWARGS) -> dict[str, Any]:
    """What preset `name` set in a run of `env` (made with `kwargs`) whose final options
    (config.to_flat) are `run_values`: the values it set that the run uses, with their
    sources, and those the user's config file or flags replaced."""
    settings = preset_settings(name, env, kwargs)
    used = {k: s.value for k, s in settings.items() if run_values.get(k) == s.value}
    record: dict[str, Any] = {
        "preset": name, "env": env,
        "values": used,
        "sources": {k: settings[k].source for k in used},
        "overridden": {k: {"preset": s.value, "run": run_values.get(k)}
                       for k, s in settings.items() if k not in used},
    }
    if env_id(env) not in _ENVS:
        shape = describe_env(env, kwargs)
        record["sized_for"] = {"obs_dim": shape.obs_dim, "action_dim": shape.action_dim,
                               "max_episode_steps": shape.max_episode_steps}
    return record


def applied_line(record: dict[str, Any]) -> str:
    """The one line a run prints for `applied(...)`."""
    values = ", ".join(f"{k} {v}" for k, v in record["values"].items())
    line = f"preset {record['preset']} for {record['env']}: {values}"
    if record["overridden"]:
        line += "; yours instead: " + ", ".join(
            f"{k} {o['run']} (preset {o['preset']})" for k, o in record["overridden"].items())
    return line
