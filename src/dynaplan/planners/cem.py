"""Cross-entropy method as the seed exercise specifies it (its Task 2).

The Gaussian starts from the mean and std of N uniform sequences (per time step and
action dimension, a diagonal "isotropic" Gaussian per step). Each of `num_iterations`
rounds samples N sequences, clips them into the bounds, scores them and refits mean and
std (ddof 0) to the `num_elites` best. The action returned is the first action of the
best sequence of the last round, as in the seed (not the mean).
"""

from __future__ import annotations

import torch

from dynaplan.planners.base import Plan, Planner


class CEMPlanner(Planner):
    def __init__(
        self, *args, num_sequences: int, num_iterations: int, num_elites: int, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        if not 0 < num_elites <= num_sequences:
            raise ValueError("need 0 < num_elites <= num_sequences")
        self.num_sequences, self.num_iterations = num_sequences, num_iterations
        self.num_elites = num_elites

    def plan(self, obs: torch.Tensor) -> Plan:
        batch, n = obs.shape[0], self.num_sequences
        init = self.uniform(batch, n)
        mean, std = init.mean(dim=1), init.std(dim=1, correction=0)  # [B, H, A]
        for _ in range(self.num_iterations):
            noise = torch.randn(init.shape, generator=self.generator, device=init.device)
            actions = torch.clamp(mean[:, None] + std[:, None] * noise, self.low, self.high)
            returns = self.evaluate(obs, actions)  # [B, N]
            elite_idx = returns.topk(self.num_elites, dim=1).indices  # [B, K]
            elites = torch.gather(
                actions, 1, elite_idx[:, :, None, None].expand(-1, -1, *actions.shape[2:])
            )
            mean, std = elites.mean(dim=1), elites.std(dim=1, correction=0)
        return self.best(actions, returns)
