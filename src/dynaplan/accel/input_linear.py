"""The first Linear of a network that is fed data, not another layer's output.

Its input never needs a gradient, so the backward pass computes only the weight's:
dL/dW = g^T x, with g [n, out] and x [n, in]. PyTorch's Linear computes it as the product
g^T @ x, an [out, n] @ [n, in] matmul with in = 4 for Pendulum (3 observations + 1 action),
which MKL runs at about 4 GFLOP/s on the 2-core CPU: 1,992 us for a 2,000-row batch of the
seed's 512-wide layer. `data_linear` computes (x^T @ g)^T instead, the same numbers in
another summation order: 419 us (medians of 200, interleaved). On the seed's two networks
that kernel was 7% of a fit (torch.profiler, `dynaplan bench`'s fitting).

The forward pass is nn.Linear's. Anywhere the fast backward does not apply (an input that
needs a gradient, not 2-D, or no autograd), it is plain `F.linear`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _DataLinear(torch.autograd.Function):
    """y = x W^T + b for an input x [n, in] that needs no gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        grad_weight = torch.mm(x.t(), grad).t().contiguous() if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0) if ctx.needs_input_grad[2] else None
        return None, grad_weight, grad_bias


def data_linear(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`linear(x)`, its weight gradient in the fast orientation when x is data."""
    if (x.dim() != 2 or x.requires_grad or linear.bias is None
            or not (torch.is_grad_enabled() and linear.weight.requires_grad)):
        return F.linear(x, linear.weight, linear.bias)
    return _DataLinear.apply(x, linear.weight, linear.bias)
