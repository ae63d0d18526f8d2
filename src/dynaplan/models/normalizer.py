"""Standardization as torch buffers, so it is saved with the model and runs on device."""

from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """x -> (x - mean) / std per feature; `fit` on the training split before each fit.

    A feature with (near) zero spread keeps std = 1 so it passes through unscaled, as
    scikit-learn's StandardScaler does.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """x: [n, dim]. Population std (ddof 0), as StandardScaler."""
        x = x.to(self.mean.device, torch.float64)
        mean = x.mean(0)
        std = x.std(0, correction=0)
        std = torch.where(std < 1e-8, torch.ones_like(std), std)
        self.mean.copy_(mean.float())
        self.std.copy_(std.float())

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


def fit_normalizers(input_norm: Normalizer, output_norm: Normalizer, x: torch.Tensor,
                    y: torch.Tensor, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit both normalizers on the rows `train` of inputs x and targets y; all rows
    normalized (a model's `prepare`, types.Learnable)."""
    input_norm.fit(x[train])
    output_norm.fit(y[train])
    return input_norm.normalize(x), output_norm.normalize(y)
