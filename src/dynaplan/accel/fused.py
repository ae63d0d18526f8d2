"""Planning-time form of one or more MLP regressors: every fixed affine map folded away.

In eval mode a `Regressor` computes denorm(W_L act(BN(... act(BN(W_1 norm(x)))))) where
the normalizers and the BatchNorms (running statistics) are fixed affine maps. They fold
into the neighbouring Linear layers, leaving one matmul and one activation per layer.
K regressors that share their input (dynamics and reward both read [obs, action]) run as
one batched matmul per layer (the input broadcast over the K networks without a copy):
for the seed's two networks, 5 kernel calls per planning step instead of about 20 per
network.

The output layer's weight is kept transposed ([K, D, h], read through a [K, h, D] view):
with D = 3 outputs MKL runs that product 2-3x faster than a contiguous [h, 3] weight
(measured at 100 rows on the 2-core CPU: 46 vs 71 us a call in the seed's rollout).

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
            assert module.running_var is not None and module.running_mean is not None
            w, b = out[-1]
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            out[-1] = (w * scale[:, None], (b - module.running_mean) * scale + module.bias)
    return out


def activate_(h: torch.Tensor, activation: str) -> torch.Tensor:
    """The planning networks' activation ("relu" or "silu"), in place on `h`."""
    return h.relu_() if activation == "relu" else torch.nn.functional.silu(h, True)


class FusedMLPs(nn.Module):
    """x [M, in] raw -> [K, M, D] raw outputs of K regressors of the same architecture
    (D = widest output; narrower outputs are zero-padded)."""

    def __init__(self, regressors: list[Regressor]) -> None:
        super().__init__()
        archs = {(r.net.hidden, r.net.activation) for r in regressors}
        if len(archs) != 1:
            raise ValueError("fused regressors must share hidden sizes and activation")
        hidden, self.activation = archs.pop()
        if not hidden:
            raise ValueError("fused regressors need at least one hidden layer")
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
        stack = lambda i, j: torch.stack([m[i][j] for m in per_model])  # noqa: E731
        depth = len(per_model[0])
        # first layer: [K, in, h1] applied to the shared input broadcast over K (no copy),
        # so its output is already [K, M, h1], contiguous for the next batched matmul
        self.w_in = stack(0, 0).transpose(1, 2).contiguous()
        self.b_in = stack(0, 1)[:, None, :]
        # hidden-to-hidden layers: [K, in, out] weights and [K, 1, out] biases for baddbmm
        # (plain tensors on the models' device: a snapshot, never trained or saved)
        self.ws = [stack(i, 0).transpose(1, 2).contiguous() for i in range(1, depth - 1)]
        self.bs = [stack(i, 1)[:, None, :] for i in range(1, depth - 1)]
        # output layer: weight [K, D, h] as stored by Linear (see the module docstring)
        self.w_out_t = stack(depth - 1, 0).contiguous()
        self.b_out = stack(depth - 1, 1)[:, None, :]
        self.epilogue = self.k == 1 and self.w_in.device.type == "cuda"
        """Layers as addmm with a row-vector bias, which cuBLASLt adds in the matmul's
        epilogue (one kernel, where baddbmm first copies the broadcast bias into its
        output): one network on a GPU."""

    def _affine(self, b: torch.Tensor, x: torch.Tensor, w: torch.Tensor,
                out: torch.Tensor | None) -> torch.Tensor:
        """b [K, 1, n] + x [K, M, k] @ w [K, k, n] -> [K, M, n] (into `out` when given)."""
        if self.epilogue:
            return torch.addmm(b[0, 0], x[0], w[0], out=None if out is None else out[0])[None]
        return torch.baddbmm(b, x, w, out=out)

    def _act(self, h: torch.Tensor) -> torch.Tensor:
        return activate_(h, self.activation)

    def _workspace(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output buffers of every layer for M rows, allocated once per M (and dtype)."""
        key = (x.shape[-2], x.dtype, x.device)
        if getattr(self, "_ws_key", None) != key:
            m = x.shape[-2]
            widths = [self.w_in.shape[2], *(w.shape[2] for w in self.ws), self.b_out.shape[2]]
            self._ws = [x.new_empty(self.k, m, n) for n in widths]
            self._ws_key = key
        return self._ws

    def hidden(self, x: torch.Tensor, reuse: bool = False) -> torch.Tensor:
        """x [M, I] (or already broadcast to [K, M, I]) -> the last hidden layer's
        activations [K, M, h]. With `reuse`, the result lives in a buffer kept between
        calls of the same M (overwritten by the next call)."""
        if x.dim() == 2:
            x = x.expand(self.k, *x.shape)
        ws = self._workspace(x) if reuse else [None] * (len(self.ws) + 2)
        h = self._act(self._affine(self.b_in, x, self.w_in, ws[0]))
        for i, (w, b) in enumerate(zip(self.ws, self.bs)):
            h = self._act(self._affine(b, h, w, ws[i + 1]))
        return h

    def forward(self, x: torch.Tensor, reuse: bool = False) -> torch.Tensor:
        """x [M, I] -> [K, M, D]. With `reuse`, every intermediate and the result live in
        buffers kept between calls (no allocation per planning step): the result is then
        overwritten by the next call of the same M."""
        h = self.hidden(x, reuse)
        out = self._workspace(x)[-1] if reuse else None
        return self._affine(self.b_out, h, self.w_out_t.transpose(1, 2), out)

    def flops_per_row(self) -> int:
        """Multiply-adds x 2 of one input row through all K networks."""
        total = 2 * self.w_in.numel() + 2 * self.w_out_t.numel()
        return total + sum(2 * w.numel() for w in self.ws)
