"""Random shooting: N uniform sequences, keep the best (Nagabandi et al. 2017, sec. IV-C)."""

from __future__ import annotations

import torch

from dynaplan.planners.base import Plan, Planner


class RandomShootingPlanner(Planner):
    def __init__(self, *args, num_sequences: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.num_sequences = num_sequences

    def plan(self, obs: torch.Tensor) -> Plan:
        actions = self.uniform(obs.shape[0], self.num_sequences)
        return self.best(actions, self.evaluate(obs, actions))
