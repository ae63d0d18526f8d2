"""Planning-time form of one or more seed MLPs: every fixed affine map folded away.

In eval mode a `Regressor` computes  denorm(W3 relu(BN2(W2 relu(BN1(W1 norm(x))))))  where
the normalizers and the BatchNorms (running statistics) are fixed affine maps. They fold
into the neighbouring Linear layers, leaving three matmuls and two ReLUs. K regressors
that share their input (dynamics and reward both read [obs, action]) run as one matmul
for the first layer (weights stacked along the output) and one batched matmul for each
later layer, so a planning step costs about 5 kernel calls instead of ~20 per model.

The folded weights are a snapshot: build a new `FusedMLPs` after every fit.
"""

from __future__ import annotations

import torch
from torch import nn

from dynaplan.models.world import Regressor


def _fold_linear_bn(linear: nn.Linear, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight [out, in] and bias [out] of BN(linear(x)) with BN's running statistics."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = linear.weight * scale[:, None]
    bias = (linear.bias - bn.running_mean) * scale + bn.bias
    return weight, bias


class FusedMLPs(nn.Module):
    """x [M, in] raw -> [K, M, D] raw outputs of K regressors (D = widest output; narrower
    outputs are zero-padded)."""

    def __init__(self, regressors: list[Regressor]) -> None:
        super().__init__()
        w1s, b1s, w2s, b2s, w3s, b3s = [], [], [], [], [], []
        out_dim = max(r.output_norm.mean.numel() for r in regressors)
        with torch.no_grad():
            for r in regressors:
                lin1, bn1, _, lin2, bn2, _, lin3 = r.net
                w1, b1 = _fold_linear_bn(lin1, bn1)
                # input normalization: W1 (x - mu) / sigma = (W1 / sigma) x - (W1 / sigma) mu
                w1 = w1 / r.input_norm.std[None, :]
                b1 = b1 - w1 @ r.input_norm.mean
                w2, b2 = _fold_linear_bn(lin2, bn2)
                # output denormalization: y * sigma + mu
                w3 = lin3.weight * r.output_norm.std[:, None]
                b3 = lin3.bias * r.output_norm.std + r.output_norm.mean
                pad = out_dim - w3.shape[0]
                w3 = torch.cat([w3, w3.new_zeros(pad, w3.shape[1])])
                b3 = torch.cat([b3, b3.new_zeros(pad)])
                w1s.append(w1), b1s.append(b1), w2s.append(w2), b2s.append(b2)
                w3s.append(w3), b3s.append(b3)
        self.k, self.hidden1 = len(regressors), w1s[0].shape[0]
        # layouts chosen so each call is a plain (batched) matmul without transposes
        self.register_buffer("w1", torch.cat(w1s).t().contiguous())  # [in, K*h1]
        self.register_buffer("b1", torch.cat(b1s))  # [K*h1]
        self.register_buffer("w2", torch.stack(w2s).transpose(1, 2).contiguous())  # [K, h1, h2]
        self.register_buffer("b2", torch.stack(b2s)[:, None, :])  # [K, 1, h2]
        self.register_buffer("w3", torch.stack(w3s).transpose(1, 2).contiguous())  # [K, h2, D]
        self.register_buffer("b3", torch.stack(b3s)[:, None, :])  # [K, 1, D]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.shape[0]
        h = torch.addmm(self.b1, x, self.w1).relu_()  # [M, K*h1]
        h = h.view(m, self.k, self.hidden1).transpose(0, 1)  # [K, M, h1]
        h = torch.baddbmm(self.b2, h, self.w2).relu_()  # [K, M, h2]
        return torch.baddbmm(self.b3, h, self.w3)  # [K, M, D]
