"""Every planner by name: the one list that configuration, the command line and the
contract tests read. Adding a planner is one file beside these and one line here."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from dynaplan.errors import ConfigError, quoted
from dynaplan.planners.base import Planner
from dynaplan.planners.cem import CEMPlanner
from dynaplan.planners.icem import ICEMPlanner
from dynaplan.planners.mppi import MPPIPlanner
from dynaplan.planners.random_shooting import RandomShootingPlanner
from dynaplan.types import Objective

PLANNERS: dict[str, type[Planner]] = {
    "cem": CEMPlanner,
    "random": RandomShootingPlanner,
    "icem": ICEMPlanner,
    "mppi": MPPIPlanner,
}


def planner_class(name: str) -> type[Planner]:
    """The planner class called `name`, or a ConfigError naming the planners there are."""
    try:
        return PLANNERS[name]
    except KeyError:
        raise ConfigError(f"unknown planner {quoted(name)}; choose from "
                          f"{', '.join(PLANNERS)}") from None


def planner_options(name: str) -> dict[str, object]:
    """The options of planner `name` with their defaults, in declaration order."""
    return {f.name: f.default for f in dataclasses.fields(planner_class(name).Options)}


def options_of(name: str, values: dict[str, object]) -> object:
    """Planner `name`'s options dataclass from `values` over its defaults; unknown options
    and invalid values are a one-line ConfigError."""
    unknown = sorted(set(values) - set(planner_options(name)))
    if unknown:
        raise ConfigError(f"planner {quoted(name)} has no option(s) {', '.join(unknown)}; "
                          f"it takes {', '.join(planner_options(name))}")
    for key, value in values.items():  # NaN passes every range check: refused here
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"planner {quoted(name)}: {key} must be a finite number, got "
                              f"{value}")
    try:
        return planner_class(name).Options(**values)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"planner {quoted(name)}: {err}") from None


def make_planner(
    name: str,
    objective: Objective,
    action_low: np.ndarray | torch.Tensor,
    action_high: np.ndarray | torch.Tensor,
    horizon: int,
    generator: torch.Generator,
    **options: object,
) -> Planner:
    """The planner `name` ("cem", "random", "icem", "mppi") with `options` over its
    defaults (see `planner_options`). Unknown names, unknown options and invalid values
    raise ConfigError."""
    options_of(name, options)  # refused in one line before anything is built
    return planner_class(name)(objective, action_low, action_high, horizon, generator,
                               **options)
