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
from dataclasses import dataclass

import torch

from dynaplan.errors import quoted
from dynaplan.planners.base import Plan, Planner
from dynaplan.planners.noise import white_noise
from dynaplan.types import SAMPLINGS, option


@dataclass(frozen=True)
class CEMOptions:
    """The cross-entropy method's options; the defaults are the seed's CEM."""

    num_sequences: int = option(100, "candidate action sequences N per planner iteration")
    num_iterations: int = option(5, "refinement iterations per plan call")
    num_elites: int = option(10, "elites: the best sequences that refit the sampling "
                             "distribution")
    alpha: float = option(0.0, "momentum: weight of the old mean and std in each refit")
    init_std: float | None = option(None, "initial std in half action ranges (unset: the "
                                    "std of uniform samples, the seed's)")
    sampling: str = option("clip", "clip samples to the bounds, or sample the Gaussian "
                           "truncated to them", choices=SAMPLINGS)
    return_mean: bool = option(False, "act on the final mean (PETS) instead of the best "
                               "sample (the seed)")

    def __post_init__(self) -> None:
        for name in ("num_sequences", "num_iterations", "num_elites"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_elites > self.num_sequences:
            raise ValueError(f"num_elites ({self.num_elites}) must not exceed num_sequences "
                             f"({self.num_sequences})")
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError("need 0 <= alpha < 1")
        if self.init_std is not None and not self.init_std > 0:
            raise ValueError("need init_std > 0 (or unset for the seed's uniform init)")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {quoted(self.sampling)}")


class CEMPlanner(Planner):
    Options = CEMOptions
    options: CEMOptions
    num_kept: int = 0
    """Elites carried into the next iteration's candidates (and the next step's); 0 here."""
    mean_candidate: bool = False
    """Whether the last iteration also scores the mean itself; False here."""

    # -- hooks (iCEM overrides them) -------------------------------------------------
    def population(self, iteration: int) -> int:
        """Number of fresh samples in round `iteration` (0-based)."""
        return self.options.num_sequences

    def noise(self, batch: int, num: int) -> torch.Tensor:
        """Standard normal noise [batch, num, H, A]; white here."""
        return white_noise((batch, num, self.horizon, self.action_dim), self.generator)

    # -- the skeleton ------------------------------------------------------------------
    def initial_distribution(
        self, batch: int, init_mean: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """mean, std: [B, H, A] of the first round's Gaussian."""
        shape = (batch, self.horizon, self.action_dim)
        init_std = self.options.init_std
        if init_mean is None and init_std is None:  # the seed's init
            init = self.uniform(batch, self.options.num_sequences)
            std, mean = torch.std_mean(init, dim=1, correction=0)
            return mean, std
        mean = self.center.expand(shape) if init_mean is None else init_mean
        if init_std is None:
            std = (self.high - self.low) / math.sqrt(12.0)
        else:
            std = init_std * self.half_range
        return mean, std.expand(shape)

    def refit(
        self, mean: torch.Tensor, std: torch.Tensor, elites: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit mean, std [B, H, A] to elites [B, K, H, A] (ddof 0), with momentum alpha."""
        new_std, new_mean = torch.std_mean(elites, dim=1, correction=0)  # one kernel
        a = self.options.alpha
        if a == 0.0:
            return new_mean, new_std
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
        options = self.options
        last = options.num_iterations - 1
        for i in range(options.num_iterations):
            actions = self.gaussian(mean, std, self.noise(batch, self.population(i)),
                                    options.sampling)
            extra = [] if kept is None else [kept]
            if self.mean_candidate and i == last:
                extra.append(torch.clamp(mean, self.low, self.high)[:, None])
            if extra:
                actions = torch.cat([actions, *extra], dim=1)
            returns = self.evaluate(obs, actions)  # [B, N_i]
            elites = self.top_k(actions, returns, options.num_elites)  # [B, K, H, A]
            mean, std = self.refit(mean, std, elites)
            kept = elites[:, : self.num_kept] if self.num_kept > 0 else None
        if options.return_mean:
            plan = self.scored(obs, mean)
        else:  # the best of the last round, which holds the kept elites of earlier ones
            plan = self.best(actions, returns)
        if kept is None:
            return plan
        return Plan(plan.action, plan.actions, plan.predicted_return, elites=kept)
