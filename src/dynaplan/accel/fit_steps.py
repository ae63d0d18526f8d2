"""Faster fitting steps for the MLP regressors (models/world.py), behind the FitStep seam.

`select_fit_step(model, x)` is the SelectFitStep that build.py hands to `models.fit`: once
a fit, with the model in train mode and two of its normalized input rows, it picks

- "native_mse": the seed's whole 512-256 BatchNorm ReLU network, forward, mean squared
  error and back, in one native call (native_fit.mse_step), where the library builds;
- "fast_forward": autograd through a faster forward pass of the same layers: a BatchNorm
  ReLU network's first block from its input's statistics (input_batchnorm; with the Linear
  after it in native code where the library builds, native_fit), or any first Linear with
  the fast weight-gradient orientation (input_linear);
- "ensemble_nll": the Gaussian ensemble's NLL step with its backward pass written out
  (ensemble_fit.py);
- the reference (autograd through the layers, models/fitting.py) for every other model.

Each gives the reference's gradients up to float32 rounding (tests/test_accel_fit.py).
"""

from __future__ import annotations

import torch
from torch import nn

from dynaplan.accel import ensemble_fit, input_batchnorm, native_fit
from dynaplan.accel.input_linear import data_linear
from dynaplan.models.fitting import gradient_step
from dynaplan.models.mlp import MLP
from dynaplan.models.world import Regressor
from dynaplan.types import FitStep, Learnable


def train_forward(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`net(x)` in training mode through the fastest form that applies (module docstring);
    the same outputs and BatchNorm running statistics as the layers one by one."""
    if input_batchnorm.applies(net, x):
        if native_fit.applies(net, x):
            if native_fit.is_seed_network(net):
                return native_fit.seed_network(net, x)
            x, done = native_fit.input_block_linear(net, x), 4
        else:
            x, done = input_batchnorm.input_block(net[0], net[1], x), 3  # type: ignore[arg-type]
    else:
        x, done = data_linear(net[0], x), 1  # type: ignore[arg-type]
    for layer in list(net)[done:]:
        x = layer(x)
    return x


def native_mse_step(model: Learnable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The seed network's MSE step in one native call (native_fit.mse_step)."""
    assert isinstance(model, Regressor)
    return native_fit.mse_step(model.net, x, y)


def fast_forward_step(model: Learnable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Autograd through `train_forward`: a Regressor's loss with its faster forward pass."""
    assert isinstance(model, Regressor)
    loss = torch.mean((train_forward(model.net, x) - y) ** 2)
    for p in model.parameters():
        p.grad = None
    loss.backward()
    return loss.detach()


def select_fit_step(model: Learnable, x: torch.Tensor) -> FitStep:
    """The fastest FitStep for `model` (module docstring): decided once a fit, since the
    checks cost about 0.25 ms and batches differ only in their rows."""
    if ensemble_fit.takes_step(model):
        return ensemble_fit.gaussian_ensemble_step
    if not (isinstance(model, Regressor) and type(model).loss is Regressor.loss
            and isinstance(model.net, MLP)):
        return gradient_step
    if native_fit.takes_mse_step(model.net, x):
        return native_mse_step
    return fast_forward_step
