"""Sampling-based trajectory optimizers. A planner sees only an objective
`(obs [B, O], actions [B, N, H, A]) -> predicted returns [B, N]` and the action bounds;
each declares its options as a dataclass beside it (`CEMOptions`, ...)."""

from dynaplan.planners.base import Plan, Planner
from dynaplan.planners.cem import CEMOptions, CEMPlanner
from dynaplan.planners.icem import ICEMOptions, ICEMPlanner
from dynaplan.planners.mppi import MPPIOptions, MPPIPlanner
from dynaplan.planners.random_shooting import RandomShootingOptions, RandomShootingPlanner
from dynaplan.planners.registry import PLANNERS, make_planner, planner_class, planner_options

__all__ = [
    "PLANNERS",
    "CEMOptions",
    "CEMPlanner",
    "ICEMOptions",
    "ICEMPlanner",
    "MPPIOptions",
    "MPPIPlanner",
    "Plan",
    "Planner",
    "RandomShootingOptions",
    "RandomShootingPlanner",
    "make_planner",
    "planner_class",
    "planner_options",
]
