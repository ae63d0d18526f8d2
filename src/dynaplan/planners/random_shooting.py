"""Random shooting: N uniform sequences, keep the best (Nagabandi et al. 2017, sec. IV-C).

With a warm start, the shifted previous plan `init_mean` is scored as one more
candidate, so the plan can only improve on it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dynaplan.planners.base import Plan, Planner
from dynaplan.types import option


@dataclass(frozen=True)
class RandomShootingOptions:
    """Random shooting's one option."""

    num_sequences: int = option(100, "candidate action sequences N per planner iteration")

    def __post_init__(self) -> None:
        if self.num_sequences < 1:
            raise ValueError(f"num_sequences must be positive, got {self.num_sequences}")


class RandomShootingPlanner(Planner):
    Options = RandomShootingOptions
    options: RandomShootingOptions

    def plan(
        self,
        obs: torch.Tensor,
        init_mean: torch.Tensor | None = None,
        init_elites: torch.Tensor | None = None,
    ) -> Plan:
        actions = self.uniform(obs.shape[0], self.options.num_sequences)
        if init_mean is not None:
            actions = torch.cat([actions, init_mean[:, None]], dim=1)
        return self.best(actions, self.evaluate(obs, actions))
