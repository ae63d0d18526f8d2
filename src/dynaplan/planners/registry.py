"""Build any planner by name from keyword options: the table config code calls."""

from __future__ import annotations

import inspect

import numpy as np
import torch

from dynaplan.errors import ConfigError
from dynaplan.planners.base import Planner
from dynaplan.planners.cem import CEMPlanner
from dynaplan.planners.icem import ICEMPlanner
from dynaplan.planners.mppi import MPPIPlanner
from dynaplan.planners.objective import Objective
from dynaplan.planners.random_shooting import RandomShootingPlanner

PLANNERS: dict[str, type[Planner]] = {
    "random": RandomShootingPlanner,
    "cem": CEMPlanner,
    "icem": ICEMPlanner,
    "mppi": MPPIPlanner,
}


def planner_options(name: str) -> dict[str, object]:
    """The keyword options of planner `name` with their defaults, in declaration order."""
    cls = _planner_class(name)
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def make_planner(
    name: str,
    objective: Objective,
    action_low: np.ndarray | torch.Tensor,
    action_high: np.ndarray | torch.Tensor,
    horizon: int,
    generator: torch.Generator,
    **options: object,
) -> Planner:
    """The planner `name` ("random", "cem", "icem", "mppi") with `options` over its
    defaults (see `planner_options`). Unknown names, unknown options and invalid values
    raise ConfigError."""
    cls = _planner_class(name)
    unknown = sorted(set(options) - set(planner_options(name)))
    if unknown:
        raise ConfigError(
            f"planner {name!r} has no option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(planner_options(name))}"
        )
    try:
        return cls(
            objective=objective,
            action_low=action_low,
            action_high=action_high,
            horizon=horizon,
            generator=generator,
            **options,
        )
    except ValueError as err:
        raise ConfigError(f"planner {name!r}: {err}") from err


def _planner_class(name: str) -> type[Planner]:
    try:
        return PLANNERS[name]
    except KeyError:
        raise ConfigError(f"unknown planner {name!r}; choose from {', '.join(PLANNERS)}") from None
