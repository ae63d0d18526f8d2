"""The seed exercise's network: Linear 512, BatchNorm, ReLU, Linear 256, BatchNorm, ReLU,
Linear."""

from __future__ import annotations

from torch import nn


class SeedMLP(nn.Sequential):
    """[n, in_dim] -> [n, out_dim]; BatchNorm uses batch statistics in train mode and its
    running statistics in eval mode (planning)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: tuple[int, int] = (512, 256)) -> None:
        h1, h2 = hidden
        super().__init__(
            nn.Linear(in_dim, h1),
            nn.BatchNorm1d(h1),
            nn.ReLU(),
            nn.Linear(h1, h2),
            nn.BatchNorm1d(h2),
            nn.ReLU(),
            nn.Linear(h2, out_dim),
        )
