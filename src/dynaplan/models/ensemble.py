"""Probabilistic ensemble of Gaussian MLPs (PETS: Chua et al. 2018, arXiv 1805.12114).

E members share an architecture and run as ONE batched matmul per layer: weights are
[E, in, out] and activations [E, M, in]. Each member outputs a mean and a bounded
log-variance (sec. 4.1 and appendix A.1 of the paper: the log-variance is softly clamped
between learned bounds `max_logvar` and `min_logvar`, which a small penalty keeps tight).
Training minimizes the Gaussian negative log-likelihood (the ensemble's `loss`, one value
per member); every member sees its own bootstrap resample of the training rows
(models/fit.py's `Bootstrap`), and after a fit the members of lowest validation error plan.

Shapes: E members, M rows, I inputs, D outputs. Everything here is in normalized units;
`input_norm` / `output_norm` map raw data in and out, as in `world.Regressor`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dynaplan.models.normalizer import Normalizer
from dynaplan.types import Transitions


class EnsembleLinear(nn.Module):
    """x [E, M, I] -> [E, M, O]: member e applies its own weight [I, O] and bias."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default init, per member
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """With `members` (indices [E']), only those members' weights apply: x [E', M, I]."""
        if members is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[members], x, self.weight[members])


class GaussianEnsemble(nn.Module):
    """E Gaussian MLPs: [E, M, I] -> mean [E, M, D], log-variance [E, M, D]."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        members: int = 5,
        hidden: tuple[int, ...] = (200, 200, 200, 200),
        activation: str = "silu",
        keep: int | None = None,
    ) -> None:
        """`keep`: how many members plan (default all): the first ones until a fit picks
        the best by validation loss."""
        super().__init__()
        self.members, self.out_dim = members, out_dim
        self.keep_count = keep or members
        widths = (in_dim, *hidden)
        self.hidden_layers = nn.ModuleList(
            EnsembleLinear(members, a, b) for a, b in zip(widths[:-1], widths[1:])
        )
        self.head = EnsembleLinear(members, widths[-1], 2 * out_dim)
        self.act = nn.SiLU() if activation == "silu" else nn.ReLU()
        self.max_logvar = nn.Parameter(torch.full((out_dim,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((out_dim,), -10.0))
        self.input_norm = Normalizer(in_dim)
        self.output_norm = Normalizer(out_dim)
        # members kept for planning (indices), e.g. the best by validation loss
        self.elites: torch.Tensor
        self.register_buffer("elites", torch.arange(self.keep_count))

    def forward(
        self, x: torch.Tensor, members: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [E, M, I] normalized -> (mean, logvar) [E, M, D], normalized units. With
        `members` (indices [E']), only those members run and x is [E', M, I]."""
        h = x
        for layer in self.hidden_layers:
            h = self.act(layer(h, members))
        out = self.head(h, members)
        mean, raw = out[..., : self.out_dim], out[..., self.out_dim :]
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw inputs [E', M, I] of the kept members -> mean and std of the state change
        [E', M, D], raw units (what `EnsembleDynamics` propagates)."""
        # all members in order: no copy of the kept members' weights
        members = None if x.shape[0] == self.members else self.elites
        mean, logvar = self(self.input_norm.normalize(x), members)
        std = torch.exp(0.5 * logvar) * self.output_norm.std
        return self.output_norm.denormalize(mean), std

    # -- Learnable (types.py) ------------------------------------------------------------

    def examples(self, data: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """[obs, action] -> the state change."""
        return torch.cat([data.obs, data.action], dim=-1), data.next_obs - data.obs

    def prepare(self, x: torch.Tensor, y: torch.Tensor,
                train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.input_norm.fit(x[train])
        self.output_norm.fit(y[train])
        return self.input_norm.normalize(x), self.output_norm.normalize(y)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gaussian NLL per member [E] (constant dropped), averaged over rows and outputs,
        plus the paper's 0.01 penalty on the log-variance bounds; x [E, M, I] and
        y [E, M, D] normalized, each member its own rows."""
        mean, logvar = self(x)
        per_member = (((mean - y) ** 2) * torch.exp(-logvar) + logvar).mean(dim=(1, 2))
        return per_member + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())

    @torch.no_grad()
    def validation_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Validation MSE of each member's mean [E]; x [M, I] and y [M, D] are shared."""
        mean, _ = self(x.expand(self.members, *x.shape))
        return ((mean - y) ** 2).mean(dim=(1, 2))

    def keep(self, valid: torch.Tensor | None, count: int | None = None) -> float:
        """Plan with the `count` (default `keep_count`) members of lowest validation loss;
        the reported loss is their mean (NaN without validation rows, which keeps the
        first members)."""
        count = self.keep_count if count is None else count
        scores = torch.zeros(self.members, device=self.elites.device) if valid is None else valid
        with torch.no_grad():
            self.elites = torch.argsort(scores)[:count].sort().values
        if valid is None:
            return float("nan")
        per_member = valid.tolist()
        return float(np.mean([per_member[k] for k in self.elites.tolist()]))
