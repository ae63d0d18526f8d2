"""Named bundles of train options (`--preset`), per environment, in the names users write
(config/flat.py turns them into a TrainConfig).

Precedence: built-in defaults (the seed exercise) < preset < config file < flags. A preset
only fills options the user did not give, so any of its values can be overridden.

- `pets`, `icem`, `mppi`: a probabilistic ensemble (Chua et al. 2018) planned through by
  CEM, iCEM (Pinneri et al. 2020) or MPPI, sized for a 2-core CPU (Pendulum-v1: tens of
  ms per plan call), with the environment's known reward where one exists, little random
  data and short iterations, so learning is judged per environment step.
- `pets-paper`: the published PETS planner and model (population 500, 50 elites, horizon
  30, 5 members of 4 x 200 units, 20 particles, TS-inf); meant for a GPU.
"""

from __future__ import annotations

from typing import Any

from dynaplan.errors import ConfigError

PRESETS = ("pets", "icem", "mppi", "pets-paper")

# Per environment: the data schedule, reward, termination and any size that differs from
# the shared ensemble and planner settings below (these win over them).
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
}


def preset_values(name: str, env: str) -> dict[str, Any]:
    """The options preset `name` sets for environment `env`."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    if env not in _ENVS:
        raise ConfigError(f"preset {name} has no settings for {env}; presets exist for "
                          f"{', '.join(_ENVS)} (or set the options as flags)")
    if name == "pets-paper":
        return {**_ENVS[env], **_PETS_PAPER}
    return {**_ENSEMBLE, **_PLANNERS[name], **_ENVS[env], **_OVERRIDES.get((name, env), {})}
