"""Sampling-based trajectory optimizers. A planner sees only an objective
`(obs [B, O], actions [B, N, H, A]) -> predicted returns [B, N]` and the action bounds."""

from dynaplan.planners.base import Plan, Planner
from dynaplan.planners.cem import CEMPlanner
from dynaplan.planners.icem import ICEMPlanner
from dynaplan.planners.mppi import MPPIPlanner
from dynaplan.planners.objective import ModelObjective, Objective
from dynaplan.planners.random_shooting import RandomShootingPlanner
from dynaplan.planners.registry import PLANNERS, make_planner, planner_options

__all__ = [
    "PLANNERS",
    "CEMPlanner",
    "ICEMPlanner",
    "MPPIPlanner",
    "ModelObjective",
    "Objective",
    "Plan",
    "Planner",
    "RandomShootingPlanner",
    "make_planner",
    "planner_options",
]
