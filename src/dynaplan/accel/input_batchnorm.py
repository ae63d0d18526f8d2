"""A network's first block, Linear -> BatchNorm (batch statistics) -> ReLU, in one pass.

While fitting, the seed's networks spend more time in BatchNorm on the first layer's
[batch, 512] output than in that layer itself: BatchNorm reads it twice and writes it
once going forward and reads it three times going back. When the layer's input is data
(no gradient needed) and narrow (Pendulum's 4 columns), BatchNorm's batch statistics
follow from the input's own mean and covariance, and so does its backward pass:

    h = x W^T + b,  mean(h_j) = mean(x) . w_j + b_j,  var(h_j) = w_j^T C w_j,

with C the (biased) covariance of x's rows. With xc = x - mean(x), invstd_j =
1 / sqrt(var(h_j) + eps) and s_j = gamma_j invstd_j, the block's output is

    y = relu(xc (W * s)^T + beta),

one [batch, in] x [in, width] product and a ReLU in place. Going back, with g the
gradient at y masked by y > 0, every gradient follows from two reductions of g, its
column sums S and xc^T g (one product of g with [xc, 1], reading g once):

    dbeta = S,  dgamma_j = invstd_j (xc^T g)_j . w_j,
    dW_j = s_j ((xc^T g)_j - dgamma_j invstd_j C w_j),  db = 0,

since BatchNorm's mean subtraction takes b out of the output. These are BatchNorm's
training-mode forward and backward, as exact as its own float arithmetic (the statistics
are summed in float64); the running mean and (unbiased) variance are updated as
BatchNorm updates them. In eval mode, or where the block is not of this form, the
network runs its layers one by one as before.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class Stats(NamedTuple):
    """A batch's statistics and the block's folded weights, in the input's dtype."""

    z: torch.Tensor  # [n, in + 1]: the centred input and a column of ones
    folded: torch.Tensor  # [width, in + 1]: W * s and beta, so that y = relu(z folded^T)
    mean: torch.Tensor  # [width] batch mean of x W^T + b
    var: torch.Tensor  # [width] its biased batch variance
    invstd: torch.Tensor  # [width]
    scale: torch.Tensor  # [width] s = gamma * invstd
    wc: torch.Tensor  # [width, in]: C w_j per row


def batch_stats(x, weight, bias, gamma, beta, eps: float) -> Stats:
    """BatchNorm's statistics of x W^T + b from x's mean and covariance (summed in float64)."""
    n, d = x.shape
    x64, w64 = x.double(), weight.double()
    xm = x64.mean(0)
    xc64 = x64 - xm
    cov = xc64.t() @ xc64 / n
    wc = w64 @ cov  # C is symmetric
    var = (wc * w64).sum(1)
    invstd = torch.rsqrt(var + eps)
    scale = gamma.double() * invstd
    z = x.new_empty((n, d + 1))
    z[:, :d] = xc64
    z[:, d] = 1.0
    folded = torch.cat([w64 * scale[:, None], beta.double()[:, None]], dim=1)
    as_x = lambda t: t.to(x.dtype)  # noqa: E731
    return Stats(z, as_x(folded), as_x(w64 @ xm + bias.double()), as_x(var), as_x(invstd),
                 as_x(scale), as_x(wc))


def block_grads(sums: torch.Tensor, weight: torch.Tensor, invstd: torch.Tensor,
                scale: torch.Tensor, wc: torch.Tensor):
    """(grad weight, grad gamma, grad beta) from sums = (z^T g)^T [width, in + 1], g the
    gradient at the block's output masked by output > 0 (invstd, scale, wc: Stats')."""
    gxc, col_sum = sums[:, :-1], sums[:, -1]
    grad_gamma = invstd * (gxc * weight).sum(1)
    grad_weight = scale[:, None] * (gxc - (grad_gamma * invstd)[:, None] * wc)
    return grad_weight, grad_gamma, col_sum


class _InputBatchNormReLU(torch.autograd.Function):
    """relu(batchnorm(x W^T + b)) with batch statistics, for data x [n, in]: returns
    (y [n, width], batch mean [width], biased batch variance [width])."""

    @staticmethod
    def forward(ctx, x, weight, bias, gamma, beta, eps: float):
        stats = batch_stats(x, weight, bias, gamma, beta, eps)
        # y = z folded^T: beta rides on the ones column (no bias pass)
        y = torch.mm(stats.z, stats.folded.t()).clamp_min_(0.0)
        ctx.save_for_backward(y, weight, stats.z, stats.invstd, stats.scale, stats.wc)
        ctx.mark_non_differentiable(stats.mean, stats.var)
        return y, stats.mean, stats.var

    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        y, weight, z, *folding = ctx.saved_tensors
        g = torch.ops.aten.threshold_backward(grad_y, y, 0.0)
        # z^T g, transposed: [width, in + 1] (the fast orientation, as data_linear)
        sums = torch.mm(z.t(), g).t()
        grad_weight, grad_gamma, grad_beta = block_grads(sums, weight, *folding)
        grad_bias = torch.zeros_like(grad_beta) if ctx.needs_input_grad[2] else None
        return None, grad_weight, grad_bias, grad_gamma, grad_beta, None


def trains_on_batch_stats(norm: nn.Module) -> bool:
    """Whether `norm` is a BatchNorm1d in training mode whose forward and running-statistics
    update these kernels reproduce: affine, tracking running statistics with a momentum."""
    return (type(norm) is nn.BatchNorm1d and norm.affine and norm.track_running_stats
            and norm.momentum is not None and norm.training)


def applies(layers: nn.Sequential, x: torch.Tensor) -> bool:
    """Whether `layers` starts with a block this module computes in one pass, for input `x`:
    a training-mode Linear -> BatchNorm1d (affine, tracking running statistics with a
    momentum) -> ReLU on a 2-D batch of data (no gradient) of at least two rows."""
    if len(layers) < 3 or not layers.training or not torch.is_grad_enabled():
        return False
    linear, norm, act = layers[0], layers[1], layers[2]
    return (type(linear) is nn.Linear and linear.bias is not None
            and trains_on_batch_stats(norm) and type(act) is nn.ReLU
            and x.dim() == 2 and x.shape[0] > 1 and not x.requires_grad
            and x.dtype in (torch.float32, torch.float64))


def input_block(linear: nn.Linear, norm: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """relu(norm(linear(x))) in training mode, BatchNorm's running statistics updated."""
    y, mean, var = _InputBatchNormReLU.apply(
        x, linear.weight, linear.bias, norm.weight, norm.bias, norm.eps)
    update_running_stats(norm, mean, var, x.shape[0])
    return y


def update_running_stats(norm: nn.BatchNorm1d, mean: torch.Tensor, var: torch.Tensor,
                         n: int) -> None:
    """BatchNorm's update of its running mean and (unbiased) variance from a batch of n."""
    assert norm.running_mean is not None and norm.running_var is not None
    assert norm.num_batches_tracked is not None and norm.momentum is not None
    with torch.no_grad():
        norm.running_mean.lerp_(mean, norm.momentum)
        norm.running_var.lerp_(var * (n / (n - 1)), norm.momentum)
        norm.num_batches_tracked.add_(1)
