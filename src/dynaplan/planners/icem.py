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

from dataclasses import dataclass

import torch

from dynaplan.planners.cem import CEMOptions, CEMPlanner
from dynaplan.planners.noise import colored_noise
from dynaplan.types import option


@dataclass(frozen=True)
class ICEMOptions(CEMOptions):
    """iCEM's options: CEM's, with the paper's defaults, and its own three."""

    num_iterations: int = option(3, "refinement iterations per plan call")
    alpha: float = option(0.1, "momentum: weight of the old mean and std in each refit")
    init_std: float | None = option(0.5, "initial std in half action ranges (unset: the "
                                    "std of uniform samples, the seed's)")
    beta: float = option(2.0, "colored-noise exponent: 0 white, 2 smooth (red)")
    keep_fraction: float = option(0.3, "share of the elites kept for the next iteration "
                                  "and the next step")
    decay: float = option(1.25, "population decay per iteration")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.beta >= 0:
            raise ValueError("need beta >= 0")
        if not 0.0 <= self.keep_fraction <= 1.0:
            raise ValueError("need 0 <= keep_fraction <= 1")
        if not self.decay >= 1.0:
            raise ValueError("need decay >= 1")


class ICEMPlanner(CEMPlanner):
    Options = ICEMOptions
    options: ICEMOptions
    warm_start = True
    mean_candidate = True

    def __init__(self, *args, **options) -> None:
        super().__init__(*args, **options)
        self.num_kept = round(self.options.keep_fraction * self.options.num_elites)

    def population(self, iteration: int) -> int:
        o = self.options
        return max(int(o.num_sequences * o.decay**-iteration), 2 * o.num_elites)

    def noise(self, batch: int, num: int) -> torch.Tensor:
        shape = (batch, num, self.horizon, self.action_dim)
        return colored_noise(self.options.beta, shape, self.generator)
