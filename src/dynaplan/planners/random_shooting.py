"""Random shooting: N uniform sequences, keep the best (Nagabandi et al. 2017, sec. IV-C).

With a warm start, the shifted previous plan `init_mean` is scored as one more
candidate, so the plan can only improve on it."""

from __future__ import annotations

import torch

from dynaplan.planners.base import Plan, Planner


class RandomShootingPlanner(Planner):
    def __init__(self, *args, num_sequences: int = 100, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.num_sequences = num_sequences

    def plan(
        self,
        obs: torch.Tensor,
        init_mean: torch.Tensor | None = None,
        init_elites: torch.Tensor | None = None,
    ) -> Plan:
        actions = self.uniform(obs.shape[0], self.num_sequences)
        if init_mean is not None:
            actions = torch.cat([actions, init_mean[:, None]], dim=1)
        return self.best(actions, self.evaluate(obs, actions))
