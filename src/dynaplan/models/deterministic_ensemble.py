"""An ensemble of deterministic MLPs: the "DE" model of the PETS paper's comparison (Chua
et al. 2018, arXiv 1805.12114, sec. 4 and 6: D, DE, P and PE models).

E members of one architecture (members.py) each predict the normalized state change and
are fitted by mean squared error, each on its own bootstrap resample of the training rows
(models/fitting.py's `Bootstrap`). The members' disagreement is then the only uncertainty:
propagated by `EnsembleDynamics` without sampling, TS-1 and TS-inf particles follow
different members and `expectation` averages them.

No accelerator knows this model: its rollouts run on the reference path and its fit on
autograd, which is what a new model type gets without registering anything but itself.
"""

from __future__ import annotations

import torch

from dynaplan.models.members import Ensemble


class DeterministicEnsemble(Ensemble):
    """E deterministic MLPs: [E, M, I] -> state change [E, M, D], normalized units
    (arguments: Ensemble's)."""

    stochastic = False

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """x: [E, M, I] normalized -> [E, M, D]; with `members` (indices [E']) only those
        members run and x is [E', M, I]."""
        return self.network(x, members)

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw inputs [E', M, I] of the kept members -> the state change [E', M, D] in raw
        units and its std, zero: a deterministic member has no spread of its own."""
        mean = self.output_norm.denormalize(self(self.input_norm.normalize(x),
                                                 self.kept_members(x)))
        return mean, mean.new_zeros(()).expand_as(mean)

    # -- Learnable (types.py); examples, prepare and keep are Ensemble's ------------------

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error per member [E] on x [E, M, I], y [E, M, D] (each member its
        own rows), normalized units."""
        return ((self(x) - y) ** 2).mean(dim=(1, 2))

    @torch.no_grad()
    def validation_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's mean squared error [E] on shared rows x [M, I], y [M, D]."""
        return self.loss(x.expand(self.members, *x.shape), y)
