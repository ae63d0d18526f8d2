"""Sampling-based trajectory optimizers. A planner sees only an objective
`(obs [B, O], actions [B, N, H, A]) -> predicted returns [B, N]` and the action bounds."""

from dynaplan.planners.base import Plan, Planner
from dynaplan.planners.cem import CEMPlanner
from dynaplan.planners.objective import ModelObjective, Objective
from dynaplan.planners.random_shooting import RandomShootingPlanner

__all__ = [
    "CEMPlanner",
    "ModelObjective",
    "Objective",
    "Plan",
    "Planner",
    "RandomShootingPlanner",
]
