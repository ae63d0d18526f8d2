"""A learned termination: the probability that an episode ends after a transition.

    p(done | s, a, s') = sigmoid(g(normalize([s, a, s'])))

For an environment whose termination nobody wrote down (a robot that falls), so that the
planner stops a particle's return where the model predicts the episode would end instead
of planning through the fall (the "early-termination dilemma", Wang et al. 2019, arXiv
1907.02057). Called as a TerminationFn (types.py), it answers `p >= 0.5`: a hard cut, the
objective's rule for every termination (objective.py).

Terminations are rare (one per episode at most), so the loss is the binary cross-entropy
with the positive rows weighted by (negatives / positives) of the training split: both
classes weigh the same, and a model that never predicts a termination no longer wins.
`fitted` is 0 until the model was fit on data that hold a termination; a run plans with
it from then on (build.py), and a checkpoint carries it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dynaplan.models.mlp import MLP
from dynaplan.models.normalizer import Normalizer
from dynaplan.types import Transitions

VALID_CHUNK = 4096


class TerminationModel(nn.Module):
    """A classifier on (obs [n, O], action [n, A], next_obs [n, O]); `Learnable`."""

    fitted: torch.Tensor
    pos_weight: torch.Tensor

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        width = 2 * obs_dim + action_dim
        self.input_norm = Normalizer(width)
        self.net = MLP(width, 1, hidden=hidden, batch_norm=False, activation="relu")
        self.register_buffer("pos_weight", torch.ones(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def logits(self, obs: torch.Tensor, action: torch.Tensor,
               next_obs: torch.Tensor) -> torch.Tensor:
        """[...] logits of p(done) for transitions of any leading shape."""
        x = torch.cat([obs, action, next_obs], dim=-1)
        lead = x.shape[:-1]
        out = self.net(self.input_norm.normalize(x.reshape(-1, x.shape[-1])))
        return out.view(lead)

    def probability(self, obs: torch.Tensor, action: torch.Tensor,
                    next_obs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(obs, action, next_obs))

    def forward(self, obs: torch.Tensor, action: torch.Tensor,
                next_obs: torch.Tensor) -> torch.Tensor:
        """bool [...]: True where the episode is predicted to end after the transition."""
        return self.logits(obs, action, next_obs) >= 0.0

    # -- Learnable (types.py) ------------------------------------------------------------

    def examples(self, data: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """[obs, action, next_obs] -> terminated as 0/1 [n, 1]."""
        x = torch.cat([data.obs, data.action, data.next_obs], dim=-1)
        return x, data.terminated.to(x.dtype)[:, None]

    def prepare(self, x: torch.Tensor, y: torch.Tensor,
                train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit the input normalizer and the class weight on the rows `train`."""
        self.input_norm.fit(x[train])
        positives = float(y[train].sum())
        negatives = float(train.numel()) - positives
        self.pos_weight.fill_(negatives / positives if positives > 0 else 1.0)
        self.fitted.fill_(positives > 0)
        return self.input_norm.normalize(x), y

    def _bce(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight,
                                                  reduction="sum")

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Class-balanced binary cross-entropy per row on normalized inputs: 0-dim."""
        return self._bce(self.net(x), y) / x.shape[0]

    @torch.no_grad()
    def validation_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for xs, ys in zip(x.split(VALID_CHUNK), y.split(VALID_CHUNK), strict=True):
            total += self._bce(self.net(xs), ys)
        return total / x.shape[0]

    def keep(self, valid: torch.Tensor | None) -> float:
        """One network: nothing to choose."""
        return float("nan") if valid is None else valid.item()


def precision_recall(predicted: torch.Tensor, actual: torch.Tensor) -> tuple[float, float]:
    """(precision, recall) of bool predictions against bool labels; NaN where undefined
    (no predicted, or no actual, terminations)."""
    hits = float((predicted & actual).sum())
    said, real = float(predicted.sum()), float(actual.sum())
    nan = float("nan")
    return (hits / said if said else nan, hits / real if real else nan)
