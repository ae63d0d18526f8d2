"""What every ensemble dynamics model shares: E member networks of one architecture run as
ONE batched matmul per layer (weights [E, in, out], activations [E, M, in]), the
normalizers that map raw data in and out, and the choice of the members that plan.

Shapes: E members, M rows, I inputs, D outputs; the networks work in normalized units.
Subclasses add their output head and state their loss (ensemble.py: Gaussian members,
deterministic_ensemble.py: deterministic ones).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dynaplan.models.normalizer import Normalizer, fit_normalizers
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


class Ensemble(nn.Module):
    """E member MLPs [E, M, I] -> [E, M, `heads` * D], and what a fit and the planner
    need of any ensemble of the state change (Learnable, types.py).

    `keep`: how many members plan (default all): the first ones until a fit picks the
    best by validation loss. `stochastic`: whether planning draws the next state from
    each member's distribution (`predict`'s std) or takes its mean."""

    stochastic = False
    heads = 1
    """Outputs per state dimension (2 for a mean and a log-variance)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        members: int = 5,
        hidden: tuple[int, ...] = (200, 200, 200, 200),
        activation: str = "silu",
        keep: int | None = None,
    ) -> None:
        super().__init__()
        self.members, self.out_dim = members, out_dim
        self.keep_count = keep or members
        widths = (in_dim, *hidden)
        self.hidden_layers = nn.ModuleList(
            EnsembleLinear(members, a, b) for a, b in zip(widths[:-1], widths[1:])
        )
        self.head = EnsembleLinear(members, widths[-1], self.heads * out_dim)
        self.act = nn.SiLU() if activation == "silu" else nn.ReLU()
        self.add_parameters()
        self.input_norm = Normalizer(in_dim)
        self.output_norm = Normalizer(out_dim)
        # members kept for planning (indices), e.g. the best by validation loss
        self.elites: torch.Tensor
        self.register_buffer("elites", torch.arange(self.keep_count))

    def add_parameters(self) -> None:
        """A subclass's parameters beyond the layers (created after them)."""

    def network(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """The members' outputs [E, M, heads * D] of normalized x [E, M, I] (with
        `members`, only those members run and x is [E', M, I])."""
        h = x
        for layer in self.hidden_layers:
            h = self.act(layer(h, members))
        return self.head(h, members)

    def kept_members(self, x: torch.Tensor) -> torch.Tensor | None:
        """The members rows [E', M, I] of the kept members run through; None for all of
        them in order (no copy of their weights)."""
        return None if x.shape[0] == self.members else self.elites

    # -- Learnable (types.py) ------------------------------------------------------------

    def examples(self, data: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """[obs, action] -> the state change."""
        return torch.cat([data.obs, data.action], dim=-1), data.next_obs - data.obs

    def prepare(self, x: torch.Tensor, y: torch.Tensor,
                train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return fit_normalizers(self.input_norm, self.output_norm, x, y, train)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss per member [E] on normalized x [E, M, I], y [E, M, D]."""
        raise NotImplementedError

    def validation_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's loss [E] on shared normalized rows x [M, I], y [M, D]."""
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw inputs [E', M, I] of the kept members -> mean and std of the state change
        [E', M, D], raw units (what `EnsembleDynamics` propagates)."""
        raise NotImplementedError

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
