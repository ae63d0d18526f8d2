"""MPPI: model predictive path integral control (Williams et al. 2017, "Information
theoretic MPC for model-based reinforcement learning", ICRA, Algorithm 2 / eq. 14-16).

Each of `num_iterations` rounds perturbs the current mean sequence with Gaussian noise
of std `noise_std` (in half ranges of the bounds), optionally smoothed along time
(noise.smooth_noise, coefficient `smoothing`), clipped or truncated to the bounds, and
moves the mean to the softmax-weighted average of the candidates:

    w_n = exp((R_n - max_m R_m) / temperature) / sum_m exp((R_m - max_m R_m) / temperature)

Subtracting the max keeps exp finite for any scale of returns; NaN returns (-inf after
`evaluate`) get weight exactly 0, and a row whose returns are all NaN keeps its mean.
The mean starts at the warm start `init_mean` (the previous plan shifted by the agent)
or at the bounds' center; the action returned is the first of the updated mean, whose
predicted return costs one more objective call.

Differences from the paper: the paper's importance-sampling term for the control cost
(lambda * u^T Sigma^-1 eps) is left to the objective (a plain return here), and the
candidates are clipped to the bounds before averaging, so the mean stays inside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dynaplan.errors import quoted
from dynaplan.planners.base import Plan, Planner
from dynaplan.planners.noise import smooth_noise, white_noise
from dynaplan.types import SAMPLINGS, option


@dataclass(frozen=True)
class MPPIOptions:
    """MPPI's options."""

    num_sequences: int = option(100, "candidate action sequences N per planner iteration")
    num_iterations: int = option(1, "refinement iterations per plan call")
    temperature: float = option(1.0, "temperature of the softmax weighting of returns")
    noise_std: float = option(0.5, "perturbation std in half action ranges")
    smoothing: float = option(0.0, "noise smoothing coefficient along the horizon, in [0, 1)")
    sampling: str = option("clip", "clip samples to the bounds, or sample the Gaussian "
                           "truncated to them", choices=SAMPLINGS)

    def __post_init__(self) -> None:
        for name in ("num_sequences", "num_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (self.temperature > 0 and self.noise_std > 0):
            raise ValueError("need temperature > 0 and noise_std > 0")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError("need 0 <= smoothing < 1")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {quoted(self.sampling)}")


def softmax_weights(returns: torch.Tensor, temperature: float) -> torch.Tensor:
    """returns [B, N] (NaN allowed) -> weights [B, N], >= 0, summing to 1 per row, or
    all 0 in a row with no finite return. Stable for returns of any magnitude."""
    big = torch.finfo(returns.dtype).max
    returns = torch.nan_to_num(returns, nan=-torch.inf, posinf=big, neginf=-torch.inf)
    top = returns.amax(dim=1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    w = torch.exp((returns - top) / temperature)
    total = w.sum(dim=1, keepdim=True)
    return torch.where(total > 0, w / total.clamp_min(torch.finfo(w.dtype).tiny), 0.0)


class MPPIPlanner(Planner):
    Options = MPPIOptions
    options: MPPIOptions
    warm_start = True

    def plan(
        self,
        obs: torch.Tensor,
        init_mean: torch.Tensor | None = None,
        init_elites: torch.Tensor | None = None,
    ) -> Plan:
        o = self.options
        shape = (obs.shape[0], self.horizon, self.action_dim)
        mean = self.center.expand(shape) if init_mean is None else init_mean
        std = (o.noise_std * self.half_range).expand(shape)
        for _ in range(o.num_iterations):
            noise = white_noise((shape[0], o.num_sequences, *shape[1:]), self.generator)
            noise = smooth_noise(noise, o.smoothing)
            actions = self.gaussian(mean, std, noise, o.sampling)  # [B, N, H, A]
            weights = softmax_weights(self.evaluate(obs, actions), o.temperature)
            # a convex combination of in-bound candidates; the clamp absorbs rounding
            new_mean = torch.einsum("bn,bnha->bha", weights, actions)
            new_mean = torch.clamp(new_mean, self.low, self.high)
            has_weight = weights.sum(dim=1) > 0  # [B]
            mean = torch.where(has_weight[:, None, None], new_mean, mean)
        return self.scored(obs, mean)
