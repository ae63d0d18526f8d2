"""Planning-time form of a GaussianEnsemble's kept members (the ensemble's FusedMLPs).

`FusedEnsemble(ensemble)(x)` maps raw inputs [E', M, I] (E' kept members) to each
member's predicted state change and its standard deviation, both in raw units:
mean * sigma + mu and sigma * exp(logvar / 2), the same as the module followed by the
output normalizer. Against running the module, per horizon step (setting d of
`dynaplan bench`, 5 members x 4 x 200 SiLU, 10,000 rows, 2-core CPU):

- the normalizers fold into the first layer and the head (no elementwise pass over the
  inputs and outputs), and the kept members' weights are a snapshot (no gather of the
  kept members' weights at every step when some members were dropped);
- activations run in place in buffers reused from step to step;
- the head, 2D = 6 outputs, reads a transposed weight [E', 2D, h]: 0.87 against 2.03 ms
  a call with a contiguous [h, 6] one (MKL, as for FusedMLPs' head);
- on a CPU, each member's rows are cut into `split` parts, so the batched matmuls have a
  multiple of the thread count as batch: 5 matrices on 2 threads run as 3 + 2, 10 halves
  as 5 + 5 (5.84 against 6.75 ms for a [5, 2000, 200] x [5, 200, 200] layer).

The snapshot is taken at construction: build a new one after every fit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dynaplan.accel.fused import activate_
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.members import EnsembleLinear

MAX_SPLIT = 4
"""Cut a member's rows into at most this many parts. The split was measured only on the
2-core CPU (2 parts); with many threads it would mean many small matrices and copies of
the weights, so past this it is not done and MKL splits the work as it did before."""


def balanced_split(members: int, device: torch.device) -> int:
    """Parts per member so that the matmul batch (members x parts) is a multiple of the
    CPU's thread count; 1 on a GPU, or where that would take more than MAX_SPLIT parts."""
    if device.type != "cpu":
        return 1
    threads = torch.get_num_threads()
    parts = threads // math.gcd(members, threads)
    return parts if parts <= MAX_SPLIT else 1


class FusedEnsemble:
    """x [E', M, I] raw -> (mean [E', M, D], std [E', M, D]) raw state-change units."""

    def __init__(self, ensemble: GaussianEnsemble, split: int | None = None) -> None:
        kept = ensemble.elites
        device = kept.device
        self.members = int(kept.numel())
        self.split = balanced_split(self.members, device) if split is None else split
        self.out_dim = d = ensemble.out_dim
        self.activation = "silu" if isinstance(ensemble.act, torch.nn.SiLU) else "relu"
        with torch.no_grad():
            hidden: list[EnsembleLinear] = list(ensemble.hidden_layers)  # type: ignore[arg-type]
            layers = [(layer.weight[kept], layer.bias[kept]) for layer in hidden]
            # input normalization: (x - mu) / sigma @ W = x @ (W / sigma) - mu / sigma @ W
            w, b = layers[0]
            mu, sigma = ensemble.input_norm.mean, ensemble.input_norm.std
            w = w / sigma[None, :, None]
            layers[0] = (w, b - (mu[None, None, :] @ w))
            # the head's mean outputs denormalized: y * sigma + mu
            w, b = ensemble.head.weight[kept].clone(), ensemble.head.bias[kept].clone()
            out_mu, out_sigma = ensemble.output_norm.mean, ensemble.output_norm.std
            w[..., :d] *= out_sigma
            b[..., :d] = b[..., :d] * out_sigma + out_mu
            # the bounded log-variance, rewritten with its constants folded (6 kernels
            # instead of 9): logvar = min + softplus((max - min) - softplus(max - raw)),
            # std = sigma exp(logvar / 2) = exp(softplus(...) / 2 + (min / 2 + log sigma))
            self.max_logvar = ensemble.max_logvar.detach().clone()
            self.span_logvar = (ensemble.max_logvar - ensemble.min_logvar).detach().clone()
            self.log_std_offset = (0.5 * ensemble.min_logvar + out_sigma.log()).detach().clone()
            # per number of parts: weights [E' parts, ...], each member's repeated
            self._weights = {1: ([(w_.contiguous(), b_) for w_, b_ in layers],
                                 w.transpose(1, 2).contiguous(), b)}
            if self.split > 1:
                rep = lambda t: t.repeat_interleave(self.split, dim=0).contiguous()  # noqa: E731
                self._weights[self.split] = ([(rep(w_), rep(b_)) for w_, b_ in layers],
                                             rep(w.transpose(1, 2)), rep(b))
        self._buffers: dict = {}

    def weights(self, parts: int = 1) -> tuple[list, torch.Tensor, torch.Tensor]:
        """The folded weights for `parts` parts a member: hidden layers [(w [E' parts, in,
        out], b [E' parts, 1, out])], the head's weight transposed [E' parts, 2D, h] and
        its bias [E' parts, 1, 2D] (mean outputs first, then the raw log-variances)."""
        return self._weights[parts]

    def _workspace(self, parts: int, rows: int, x: torch.Tensor) -> list[torch.Tensor]:
        """Output buffers of the hidden layers, kept while the shape stays the same."""
        key = (parts, rows, x.dtype, x.device)
        if key not in self._buffers:
            layers = self._weights[parts][0]
            self._buffers = {key: [x.new_empty(len(w), rows, w.shape[2]) for w, _ in layers]}
        return self._buffers[key]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e, m, _ = x.shape
        parts = self.split if m % self.split == 0 else 1  # else one part per member
        layers, head_t, head_b = self._weights[parts]
        h = x.reshape(e * parts, m // parts, x.shape[2])
        for (w, b), out in zip(layers, self._workspace(parts, m // parts, x)):
            h = torch.baddbmm(b, h, w, out=out)
            h = activate_(h, self.activation)
        out = torch.baddbmm(head_b, h, head_t.transpose(1, 2)).view(e, m, -1)
        mean, raw = out[..., : self.out_dim], out[..., self.out_dim :]
        above_min = F.softplus(torch.sub(self.span_logvar, F.softplus(self.max_logvar - raw)))
        return mean, torch.add(self.log_std_offset, above_min, alpha=0.5).exp_()


def ensemble_layers(net: FusedEnsemble):
    """A FusedEnsemble's folded weights as (layers [(w [E, in, out], b [E, out])], the mean
    head (w [E, h, O], b [E, O]), the log-variance head and its bounds): what the rollout
    kernels (accel/triton_rollout.py, accel/native_rollout.py) run."""
    layers, head_t, head_b = net.weights(1)
    d = net.out_dim
    layers = [(w, b[:, 0]) for w, b in layers]
    mean = (head_t[:, :d].transpose(1, 2), head_b[:, 0, :d])
    var = (head_t[:, d:].transpose(1, 2), head_b[:, 0, d:], net.max_logvar.reshape(-1),
           net.span_logvar.reshape(-1), net.log_std_offset.reshape(-1))
    return layers, mean, var
