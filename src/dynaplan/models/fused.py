"""Planning-time form of one or more MLP regressors: every fixed affine map folded away.

In eval mode a `Regressor` computes denorm(W_L act(BN(... act(BN(W_1 norm(x)))))) where
the normalizers and the BatchNorms (running statistics) are fixed affine maps. They fold
into the neighbouring Linear layers, leaving one matmul and one activation per layer.
K regressors that share their input (dynamics and reward both read [obs, action]) run as
one batched matmul per layer (the input broadcast over the K networks without a copy):
for the seed's two networks, 5 kernel calls per planning step instead of about 20 per
network.

The folded weights are a snapshot: build a new `FusedMLPs` after every fit.
"""

from __future__ import annotations

import torch
from torch import nn

from dynaplan.models.world import Regressor


def _layers(net: nn.Sequential) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight [out, in], bias [out]) per Linear, with a following BatchNorm folded in."""
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    for module in net:
        if isinstance(module, nn.Linear):
            out.append((module.weight, module.bias))
        elif isinstance(module, nn.BatchNorm1d):
            w, b = out[-1]
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            out[-1] = (w * scale[:, None], (b - module.running_mean) * scale + module.bias)
    return out


class FusedMLPs(nn.Module):
    """x [M, in] raw -> [K, M, D] raw outputs of K regressors of the same architecture
    (D = widest output; narrower outputs are zero-padded)."""

    def __init__(self, regressors: list[Regressor]) -> None:
        super().__init__()
        archs = {(r.net.hidden, r.net.activation) for r in regressors}  # type: ignore[union-attr]
        if len(archs) != 1:
            raise ValueError("fused regressors must share hidden sizes and activation")
        self.activation = archs.pop()[1]
        out_dim = max(r.output_norm.mean.numel() for r in regressors)
        per_model = []
        with torch.no_grad():
            for r in regressors:
                layers = _layers(r.net)
                # input normalization: W (x - mu) / sigma = (W / sigma) x - (W / sigma) mu
                w, b = layers[0]
                w = w / r.input_norm.std[None, :]
                layers[0] = (w, b - w @ r.input_norm.mean)
                # output denormalization y * sigma + mu, zero-padded to out_dim rows
                w, b = layers[-1]
                w = w * r.output_norm.std[:, None]
                b = b * r.output_norm.std + r.output_norm.mean
                pad = out_dim - w.shape[0]
                layers[-1] = (torch.cat([w, w.new_zeros(pad, w.shape[1])]),
                              torch.cat([b, b.new_zeros(pad)]))
                per_model.append(layers)
        self.k = len(regressors)
        # first layer: [K, in, h1] applied to the shared input broadcast over K (no copy),
        # so its output is already [K, M, h1], contiguous for the next batched matmul
        self.w_in = torch.stack([m[0][0] for m in per_model]).transpose(1, 2).contiguous()
        self.b_in = torch.stack([m[0][1] for m in per_model])[:, None, :]
        # later layers: [K, in, out] weights and [K, 1, out] biases for baddbmm (plain
        # tensors on the models' device: a snapshot, never trained or saved)
        self.ws = [torch.stack([m[i][0] for m in per_model]).transpose(1, 2).contiguous()
                   for i in range(1, len(per_model[0]))]
        self.bs = [torch.stack([m[i][1] for m in per_model])[:, None, :]
                   for i in range(1, len(per_model[0]))]

    def _act(self, h: torch.Tensor) -> torch.Tensor:
        return h.relu_() if self.activation == "relu" else torch.nn.functional.silu(h, True)

    def _workspace(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output buffers of every layer for M rows, allocated once per M (and dtype)."""
        key = (x.shape[0], x.dtype, x.device)
        if getattr(self, "_ws_key", None) != key:
            m = x.shape[0]
            self._ws = [x.new_empty(self.k, m, w.shape[2]) for w in [self.w_in, *self.ws]]
            self._ws_key = key
        return self._ws

    def forward(self, x: torch.Tensor, reuse: bool = False) -> torch.Tensor:
        """x [M, I] -> [K, M, D]. With `reuse`, every intermediate and the result live in
        buffers kept between calls (no allocation per planning step): the result is then
        overwritten by the next call of the same M."""
        ws = self._workspace(x) if reuse else [None] * (len(self.ws) + 1)
        h = torch.baddbmm(self.b_in, x.expand(self.k, *x.shape), self.w_in, out=ws[0])
        h = self._act(h)  # [K, M, h1]
        last = len(self.ws) - 1
        for i, (w, b) in enumerate(zip(self.ws, self.bs)):
            h = torch.baddbmm(b, h, w, out=ws[i + 1])
            if i < last:
                h = self._act(h)
        return h  # [K, M, D]

    def flops_per_row(self) -> int:
        """Multiply-adds x 2 of one input row through all K networks."""
        total = 2 * self.w_in.numel()
        return total + sum(2 * w.numel() for w in self.ws)
