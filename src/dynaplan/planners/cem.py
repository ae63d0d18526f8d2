"""Cross-entropy method (Rubinstein 1999; as a trajectory optimizer, e.g. Chua et al.
2018, PETS), with the seed exercise's variant (its Task 2) as the default.

Seed variant (all options at their defaults): the Gaussian starts from the mean and std
of N uniform sequences (a diagonal Gaussian per time step and action dimension). Each of
`num_iterations` rounds samples N sequences, clips them into the bounds, scores them and
refits mean and std (ddof 0) to the `num_elites` best. The action returned is the first
action of the best sequence of the last round, not the mean.

Options, each off by default:
- `alpha`: momentum, mean/std <- alpha * old + (1 - alpha) * elite fit;
- `init_std`: start from N(center of the bounds, (init_std * half range)^2) instead of
  the uniform samples' fit;
- `sampling="truncnorm"`: sample the Gaussian truncated to the bounds instead of
  clipping (which piles samples up on the bounds);
- `return_mean`: return the final mean (scored by one more objective call), as PETS does.

A warm start `init_mean` [B, H, A] replaces the initial mean; the initial std is then
`init_std` * half range, or the std of the uniform distribution (high - low) / sqrt(12)
when `init_std` is None. The iteration loop (`plan`) is the skeleton iCEM reuses through
the hooks `population`, `noise`, `num_kept` and `mean_candidate`.
"""

from __future__ import annotations

import math

import torch

from dynaplan.planners.base import SAMPLINGS, Plan, Planner
from dynaplan.planners.noise import white_noise


class CEMPlanner(Planner):
    num_kept: int = 0
    """Elites carried into the next iteration's candidates (and the next step's); 0 here."""
    mean_candidate: bool = False
    """Whether the last iteration also scores the mean itself; False here."""

    def __init__(
        self,
        *args,
        num_sequences: int = 100,
        num_iterations: int = 5,
        num_elites: int = 10,
        alpha: float = 0.0,
        init_std: float | None = None,
        sampling: str = "clip",
        return_mean: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not 0 < num_elites <= num_sequences:
            raise ValueError("need 0 < num_elites <= num_sequences")
        if num_iterations < 1:
            raise ValueError("need num_iterations >= 1")
        if not 0.0 <= alpha < 1.0:
            raise ValueError("need 0 <= alpha < 1")
        if init_std is not None and init_std <= 0:
            raise ValueError("need init_std > 0 (or None for the seed's uniform init)")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.num_sequences, self.num_iterations = num_sequences, num_iterations
        self.num_elites, self.alpha, self.init_std = num_elites, alpha, init_std
        self.sampling, self.return_mean = sampling, return_mean

    # -- hooks (iCEM overrides them) -------------------------------------------------
    def population(self, iteration: int) -> int:
        """Number of fresh samples in round `iteration` (0-based)."""
        return self.num_sequences

    def noise(self, batch: int, num: int) -> torch.Tensor:
        """Standard normal noise [batch, num, H, A]; white here."""
        return white_noise((batch, num, self.horizon, self.action_dim), self.generator)

    # -- the skeleton ------------------------------------------------------------------
    def initial_distribution(
        self, batch: int, init_mean: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """mean, std: [B, H, A] of the first round's Gaussian."""
        shape = (batch, self.horizon, self.action_dim)
        if init_mean is None and self.init_std is None:  # the seed's init
            init = self.uniform(batch, self.num_sequences)
            std, mean = torch.std_mean(init, dim=1, correction=0)
            return mean, std
        mean = self.center.expand(shape) if init_mean is None else init_mean
        if self.init_std is None:
            std = (self.high - self.low) / math.sqrt(12.0)
        else:
            std = self.init_std * self.half_range
        return mean, std.expand(shape)

    def refit(
        self, mean: torch.Tensor, std: torch.Tensor, elites: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit mean, std [B, H, A] to elites [B, K, H, A] (ddof 0), with momentum alpha."""
        new_std, new_mean = torch.std_mean(elites, dim=1, correction=0)  # one kernel
        if self.alpha == 0.0:
            return new_mean, new_std
        a = self.alpha
        return a * mean + (1 - a) * new_mean, a * std + (1 - a) * new_std

    def plan(
        self,
        obs: torch.Tensor,
        init_mean: torch.Tensor | None = None,
        init_elites: torch.Tensor | None = None,
    ) -> Plan:
        batch = obs.shape[0]
        mean, std = self.initial_distribution(batch, init_mean)
        kept = init_elites if self.num_kept > 0 else None  # [B, K', H, A]
        last = self.num_iterations - 1
        for i in range(self.num_iterations):
            actions = self.gaussian(mean, std, self.noise(batch, self.population(i)), self.sampling)
            extra = [] if kept is None else [kept]
            if self.mean_candidate and i == last:
                extra.append(torch.clamp(mean, self.low, self.high)[:, None])
            if extra:
                actions = torch.cat([actions, *extra], dim=1)
            returns = self.evaluate(obs, actions)  # [B, N_i]
            elites = self.top_k(actions, returns, self.num_elites)  # [B, K, H, A]
            mean, std = self.refit(mean, std, elites)
            kept = elites[:, : self.num_kept] if self.num_kept > 0 else None
        if self.return_mean:
            plan = self.scored(obs, mean)
        else:  # the best of the last round, which holds the kept elites of earlier ones
            plan = self.best(actions, returns)
        if kept is None:
            return plan
        return Plan(plan.action, plan.actions, plan.predicted_return, elites=kept)
