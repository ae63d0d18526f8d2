"""iCEM: the improved cross-entropy method of Pinneri et al. 2020 ("Sample-efficient
cross-entropy method for real-time planning", arXiv 2008.06389, Algorithm 1).

It is the CEM skeleton of cem.py with these changes, each from the paper:
- colored noise: samples are mean + std * noise with noise whose power spectrum along
  the horizon goes as 1/f^beta (noise.colored_noise; sec. 3.1), clipped to the bounds;
- population decay: round i samples N_i = max(N * decay^-i, 2 * num_elites) (sec. 3.3);
- memory: a fraction `keep_fraction` of the elites joins the next round's candidates
  and, shifted by one step by the MPCAgent, the first round of the next step (sec. 3.2);
- the last round also scores the mean itself (sec. 3.2);
- momentum alpha = 0.1 on mean and std, initial std 0.5 (in half ranges of the
  bounds) around the center or the warm-start mean;
- the action returned is the first of the best sequence seen (the best of the last
  round, which contains the kept elites of the earlier rounds).

Differences from the paper: the shift of the mean and elites appends the agent's fill
value (the bounds' center by default) rather than fresh samples, and the noise is
normalized to unit variance exactly rather than empirically.
"""

from __future__ import annotations

import torch

from dynaplan.planners.cem import CEMPlanner
from dynaplan.planners.noise import colored_noise


class ICEMPlanner(CEMPlanner):
    warm_start = True
    mean_candidate = True

    def __init__(
        self,
        *args,
        num_sequences: int = 100,
        num_iterations: int = 3,
        num_elites: int = 10,
        alpha: float = 0.1,
        init_std: float = 0.5,
        sampling: str = "clip",
        beta: float = 2.0,
        keep_fraction: float = 0.3,
        decay: float = 1.25,
        **kwargs,
    ) -> None:
        super().__init__(
            *args,
            num_sequences=num_sequences,
            num_iterations=num_iterations,
            num_elites=num_elites,
            alpha=alpha,
            init_std=init_std,
            sampling=sampling,
            **kwargs,
        )
        if beta < 0:
            raise ValueError("need beta >= 0")
        if not 0.0 <= keep_fraction <= 1.0:
            raise ValueError("need 0 <= keep_fraction <= 1")
        if decay < 1.0:
            raise ValueError("need decay >= 1")
        self.beta, self.keep_fraction, self.decay = beta, keep_fraction, decay
        self.num_kept = round(keep_fraction * num_elites)

    def population(self, iteration: int) -> int:
        return max(int(self.num_sequences * self.decay**-iteration), 2 * self.num_elites)

    def noise(self, batch: int, num: int) -> torch.Tensor:
        return colored_noise(self.beta, (batch, num, self.horizon, self.action_dim), self.generator)
