"""The Gaussian ensemble's fitting step with its backward pass written out (FitStep).

`GaussianEnsemble.loss` (models/ensemble.py) through autograd records about 30 ops a step
and runs about 60 in the backward pass; at the CPU presets' sizes (5 members, 32 rows
each, 64 units) each is a few microseconds, so the step is bound by their count, not by
its arithmetic. This step computes the same loss and the gradients of its sum in closed
form: the forward pass keeps each layer's activations, and the backward pass is one
batched matmul per weight gradient and per layer's input gradient, the activation's
derivative as a mask (ReLU) or from its input (SiLU), and the bounded log-variance's
derivatives from the two softplus gates:

    v = l_max - raw,    l1 = l_max - softplus(v),    u = l1 - l_min,    l = l_min + softplus(u)
    dl/dl1 = sigmoid(u),  dl/dl_min = 1 - sigmoid(u),  dl1/draw = sigmoid(v),
    dl1/dl_max = 1 - sigmoid(v)

With N = rows x outputs per member, the NLL term (mu - y)^2 e^-l + l gives
dL/dmu = 2 (mu - y) e^-l / N and dL/dl = (1 - (mu - y)^2 e^-l) / N; the bound penalty adds
+-w per member to the bounds' gradients. Same loss and gradients as autograd to float32
rounding (tests/test_accel_fit.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dynaplan.models.ensemble import GaussianEnsemble, bound_penalty_weight
from dynaplan.models.members import EnsembleLinear
from dynaplan.types import Learnable


def takes_step(model: Learnable) -> bool:
    """Whether `model` is a GaussianEnsemble whose loss, forward pass and layers are the
    ones this step writes out (a subclass that changes any of them fits by autograd)."""
    if not isinstance(model, GaussianEnsemble):
        return False
    kind = type(model)
    return (kind.loss is GaussianEnsemble.loss and kind.forward is GaussianEnsemble.forward
            and kind.network is GaussianEnsemble.network
            and isinstance(model.act, (torch.nn.ReLU, torch.nn.SiLU)))


@torch.no_grad()
def gaussian_ensemble_step(model: Learnable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The per-member loss [E] of normalized x [E, M, I], y [E, M, D], with every
    parameter's .grad set to the gradient of the losses' sum (FitStep)."""
    assert isinstance(model, GaussianEnsemble)
    relu = isinstance(model.act, torch.nn.ReLU)
    layers: list[EnsembleLinear] = [*model.hidden_layers, model.head]
    inputs, pre = [x], []  # each layer's input; the hidden layers' pre-activations (SiLU)
    h = x
    for layer in layers[:-1]:
        z = torch.baddbmm(layer.bias, h, layer.weight)
        if relu:
            h = z.clamp_min_(0.0)
        else:
            pre.append(z)
            h = F.silu(z)
        inputs.append(h)
    out = torch.baddbmm(model.head.bias, h, model.head.weight)
    d = model.out_dim
    mean, raw = out[..., :d], out[..., d:]
    max_lv, min_lv = model.max_logvar, model.min_logvar
    v = max_lv - raw
    u = max_lv - F.softplus(v) - min_lv
    logvar = min_lv + F.softplus(u)
    inv_var = torch.exp(-logvar)
    err = mean - y
    scaled = err * err * inv_var
    members, rows = x.shape[0], x.shape[1]
    n = rows * d
    weight = bound_penalty_weight(d)
    loss = (scaled + logvar).mean(dim=(1, 2)) + weight * (max_lv.sum() - min_lv.sum())

    grad_out = torch.empty_like(out)
    torch.mul(err * inv_var, 2.0 / n, out=grad_out[..., :d])
    grad_logvar = (1.0 - scaled).mul_(1.0 / n)
    grad_l1 = grad_logvar * torch.sigmoid(u)
    grad_raw = grad_out[..., d:]
    torch.mul(grad_l1, torch.sigmoid(v), out=grad_raw)
    min_lv.grad = (grad_logvar - grad_l1).sum(dim=(0, 1)) - weight * members
    max_lv.grad = (grad_l1 - grad_raw).sum(dim=(0, 1)) + weight * members

    grad = grad_out
    for k in range(len(layers) - 1, -1, -1):
        layer, a = layers[k], inputs[k]
        layer.weight.grad = torch.bmm(a.transpose(1, 2), grad)
        layer.bias.grad = grad.sum(dim=1, keepdim=True)
        if k == 0:
            break
        grad = torch.bmm(grad, layer.weight.transpose(1, 2))
        if relu:
            grad.mul_(a > 0)
        else:  # silu'(z) = s(z) (1 + z (1 - s(z)))
            z = pre[k - 1]
            s = torch.sigmoid(z)
            grad.mul_(s * (1.0 + z * (1.0 - s)))
    return loss
