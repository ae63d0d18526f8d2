"""Multilayer perceptrons. The default is the seed exercise's network:
Linear 512, BatchNorm, ReLU, Linear 256, BatchNorm, ReLU, Linear."""

from __future__ import annotations

import torch
from torch import nn

from dynaplan.models import input_batchnorm, native_fit
from dynaplan.models.input_linear import InputLinear

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU}


class MLP(nn.Sequential):
    """[n, in_dim] -> [n, out_dim]: per hidden width a Linear, optionally BatchNorm, and an
    activation; then a Linear. BatchNorm uses batch statistics in train mode and running
    statistics in eval mode (planning)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: tuple[int, ...] = (512, 256),
        batch_norm: bool = True,
        activation: str = "relu",
    ) -> None:
        layers: list[nn.Module] = []
        width = in_dim
        for i, h in enumerate(hidden):
            # the first layer reads the data: its weight gradient has a faster form
            layers.append((InputLinear if i == 0 else nn.Linear)(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            # ReLU in place: the Linear or BatchNorm before it needs only its own input
            # for its backward pass, so the activation may overwrite that output (one
            # [batch, width] tensor less per layer; fitting the seed's networks 4-6%
            # faster). SiLU's backward needs its input, so it keeps its own output.
            act = ACTIVATIONS[activation]
            layers.append(act(inplace=True) if act is nn.ReLU else act())
            width = h
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)
        self.hidden, self.batch_norm, self.activation = tuple(hidden), batch_norm, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layers in order. While fitting a BatchNorm ReLU network: its first block
        (Linear, BatchNorm, ReLU) in one pass (`input_batchnorm`); where the native library
        builds, that block and the Linear after it in native code, or the whole network
        where it has the seed's form (`native_fit`). Same results, fewer passes over the
        [batch, width] activations."""
        if not input_batchnorm.applies(self, x):
            return super().forward(x)
        if native_fit.applies(self, x):
            if native_fit.is_seed_network(self):
                return native_fit.seed_network(self, x)
            x, done = native_fit.input_block_linear(self, x), 4
        else:
            x, done = input_batchnorm.input_block(self[0], self[1], x), 3
        for layer in list(self)[done:]:
            x = layer(x)
        return x


def SeedMLP(in_dim: int, out_dim: int) -> MLP:  # noqa: N802 (a named default, used like a class)
    """The seed's 512-256 BatchNorm ReLU network."""
    return MLP(in_dim, out_dim, hidden=(512, 256), batch_norm=True, activation="relu")
