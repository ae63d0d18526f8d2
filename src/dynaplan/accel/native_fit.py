"""A fitting step of a BatchNorm ReLU network in native code, on the CPU
(accel/native_fit.c, built with the rollout kernel by accel/native_build.py): the first
block Linear -> BatchNorm -> ReLU of `input_batchnorm` and the Linear after it, and where
the network has the seed's form (Linear BatchNorm ReLU, Linear BatchNorm ReLU, Linear
head) the whole of it.

On the seed's networks most of a fitting step's time outside the matmuls was passes over
[batch, width] tensors: the first layer's output, its ReLU, the ReLU's backward mask and
the masked gradient, and the same around the second BatchNorm and the head. Here:

- forward: y1 = relu(z F^T) in one pass that writes y1 (z = [x - mean(x), 1], F the
  folded first layer, as in `input_batchnorm`); the second layer's product h2 = y1 W2^T +
  b2, with h2's column statistics summed as its tiles are stored; then y2 = relu of the
  second BatchNorm of h2 and the head's output in one pass, y2 kept a row at a time
  (going back it is recomputed from h2, cheaper than reading it back);
- backward: from the head's output gradient, the second BatchNorm's and the head's
  gradients in two passes over h2, writing only dh2; the second layer's weight
  gradient dh2^T y1 (torch's matmul); and of the second layer's input gradient dh2 W2
  only what the first block needs, z^T ((dh2 W2) * (y1 > 0)) [in + 1, width], reduced
  tile by tile in registers, so the [batch, width] input gradient is never written.

Both products run the rollout kernel's register-blocked micro-kernel (native_gemm.h),
which on this 2-core CPU beats torch's matmul on these shapes; the third product, the
weight gradient, stays torch's, which is faster for its long inner dimension. Biases just
before a BatchNorm get exact zero gradients (the BatchNorm cancels them).

While fitting, `mse_step` runs the whole step of the seed's network, forward, the mean
squared error and back, in one native call (dp_fit_seed_mse) and the weight gradient's
product, without autograd: each return from native code to Python costs a step about
0.05-0.1 ms on this CPU (the first small ops after a product run 9-12x slower than alone,
likely because the products evict the interpreter's cache lines).

The results are the layer-by-layer path's (float32 rounding aside, test_input_batchnorm.py).
The kernels run where the native library builds (native_build.unavailable() is None) and
the layers are float32 on the CPU; elsewhere, and when `ENABLED` is False, `input_batchnorm`
does the first block in torch ops and the other layers run one by one.
"""

from __future__ import annotations

import ctypes

import torch
from torch import nn

from dynaplan.accel import input_batchnorm, native_build

ENABLED = True
"""False: fit with torch ops only (as benchmarks/native_fit_ab.py does for its A/B)."""

MR, NR, MC = 6, 16, 96  # native_gemm.h's micro-kernel, native_fit.c's row chunks
MAX_INPUTS = 64
"""The widest input the kernel takes: its first layer is a plain loop over the inputs, and
its statistics cost width x inputs^2 (torch ops take wider inputs)."""


def _ceil(n: int, m: int) -> int:
    return -(-n // m) * m


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


def _first_block(x, w1, b1, gamma, beta, eps: float, threads: int):
    """The first block going forward: (z, y, mask, mean, var, invstd, scale, wc), mask the
    bits of y > 0 (native_fit.c)."""
    (n, d), width = x.shape, w1.shape[0]
    z, y = x.new_empty((n, d + 1)), x.new_empty((n, width))
    mask = torch.empty((n, (width + 7) // 8), dtype=torch.uint8)
    mean, var, invstd, scale = x.new_empty((4, width))
    wc, folded_t = x.new_empty((width, d)), x.new_empty((d + 1, width))
    work = torch.empty(d + d * d, dtype=torch.float64)
    native_build.library().dp_fit_input_block(
        n, d, width, *map(_ptr, (x, w1, b1, gamma, beta)), eps,
        *map(_ptr, (z, y, mask, mean, var, invstd, scale, wc, folded_t, work)), threads)
    return z, y, mask, mean, var, invstd, scale, wc


def _linear(a, w, b, threads: int, stats: bool = False):
    """a w^T + b, and with `stats` its column means and biased variances."""
    (n, k), out = a.shape, w.shape[0]
    h = a.new_empty((n, out))
    scratch = a.new_empty(_ceil(out, NR) * k + threads * (MC * k + MR * NR))
    mean, var = a.new_empty((2, out)) if stats else (None, None)
    colwork = torch.empty(threads * 2 * _ceil(out, NR), dtype=torch.float64) if stats else None
    native_build.library().dp_fit_linear(
        n, k, out, _ptr(a), _ptr(w), _ptr(b), _ptr(h),
        *(None if t is None else _ptr(t) for t in (mean, var, colwork)), _ptr(scratch), threads)
    return (h, mean, var) if stats else h


def _first_block_backward(g, w2, mask, z, w1, invstd, scale, wc, threads: int):
    """(grad w1, grad gamma, grad beta) from g, the gradient at the Linear after the block."""
    n, out, width, d = g.shape[0], g.shape[1], w1.shape[0], z.shape[1]
    grad_w1, (grad_gamma, grad_beta) = torch.empty_like(w1), g.new_empty((2, width))
    scratch = g.new_empty(_ceil(width, NR) * out
                          + threads * (MC * out + MR * NR + d * _ceil(width, NR)))
    native_build.library().dp_fit_input_block_backward(
        n, out, width, _ptr(g), _ptr(w2), _ptr(mask), _ptr(z), d,
        *map(_ptr, (w1, invstd, scale, wc, grad_w1, grad_gamma, grad_beta, scratch)), threads)
    return grad_w1, grad_gamma, grad_beta


class _InputBlockLinear(torch.autograd.Function):
    """linear2(relu(batchnorm(x W1^T + b1))) with batch statistics, for data x [n, in]:
    returns (h [n, out], the block's batch mean [width], its biased variance [width])."""

    @staticmethod
    def forward(ctx, x, w1, b1, gamma, beta, eps: float, w2, b2):
        threads = torch.get_num_threads()
        z, y, mask, mean, var, *folding = _first_block(x, w1, b1, gamma, beta, eps, threads)
        h = _linear(y, w2, b2, threads)
        ctx.save_for_backward(y, mask, z, w1, w2, *folding)
        ctx.mark_non_differentiable(mean, var)
        return h, mean, var

    @staticmethod
    def backward(ctx, grad_h, _grad_mean, _grad_var):
        y, mask, z, w1, w2, *folding = ctx.saved_tensors
        g = grad_h.contiguous()
        grad_w1, grad_gamma, grad_beta = _first_block_backward(
            g, w2, mask, z, w1, *folding, torch.get_num_threads())
        grad_b1 = torch.zeros_like(grad_beta) if ctx.needs_input_grad[2] else None
        grad_w2 = torch.mm(g.t(), y) if ctx.needs_input_grad[6] else None
        grad_b2 = g.sum(0) if ctx.needs_input_grad[7] else None
        return None, grad_w1, grad_b1, grad_gamma, grad_beta, None, grad_w2, grad_b2


def _seed_forward(x, w1, b1, g1, beta1, eps1: float, w2, b2, g2, beta2, eps2: float, wh, bh):
    """The seed's whole network going forward with batch statistics: (out [n, O], (each
    BatchNorm's batch mean and biased variance), what `_seed_backward` needs)."""
    threads = torch.get_num_threads()
    z, y1, mask1, mean1, var1, *folding = _first_block(x, w1, b1, g1, beta1, eps1, threads)
    h2, mean2, var2 = _linear(y1, w2, b2, threads, stats=True)
    (n, width2), heads = h2.shape, wh.shape[0]
    invstd2, scale2 = x.new_empty((2, width2))
    out = x.new_empty((n, heads))
    work = torch.empty(threads * (1 + (width2 + 1) // 2), dtype=torch.float64)
    native_build.library().dp_fit_bn_relu_head(
        n, width2, heads, *map(_ptr, (h2, mean2, var2, g2, beta2)), eps2,
        *map(_ptr, (wh, bh, invstd2, scale2, out)), None, None, _ptr(work), threads)
    saved = (z, y1, mask1, h2, w1, w2, wh, mean2, invstd2, scale2, beta2, *folding)
    return out, (mean1, var1, mean2, var2), saved


def _seed_backward(saved, gout):
    """From the gradient gout [n, O] at the network's output (contiguous), the gradients of
    (w1, b1, gamma1, beta1, w2, b2, gamma2, beta2, wh, bh); both biases before a BatchNorm
    get exact zeros."""
    z, y1, mask1, h2, w1, w2, wh, mean2, invstd2, scale2, beta2, *folding = saved
    threads = torch.get_num_threads()
    (n, width2), heads = h2.shape, wh.shape[0]
    dh2, grad_wh = torch.empty_like(h2), torch.empty_like(wh)
    grad_g2, grad_beta2, grad_bh = gout.new_empty((2, width2)).unbind(0) + (
        gout.new_empty(heads),)
    work = gout.new_empty(threads * ((2 + heads) * width2 + heads) + 2 * width2)
    native_build.library().dp_fit_bn_relu_head_backward(
        n, width2, heads, *map(_ptr, (gout, wh, h2, mean2, invstd2, scale2, beta2, dh2,
                                      grad_g2, grad_beta2, grad_wh, grad_bh, work)),
        threads)
    grad_w1, grad_g1, grad_beta1 = _first_block_backward(dh2, w2, mask1, z, w1, *folding,
                                                         threads)
    grad_w2 = torch.mm(dh2.t(), y1)
    zero_b1, zero_b2 = torch.zeros_like(grad_beta1), torch.zeros_like(grad_beta2)
    return (grad_w1, zero_b1, grad_g1, grad_beta1, grad_w2, zero_b2, grad_g2, grad_beta2,
            grad_wh, grad_bh)


class _SeedNetwork(torch.autograd.Function):
    """The seed's whole network, Linear BatchNorm ReLU Linear BatchNorm ReLU Linear, with
    batch statistics, for data x [n, in]: returns (out [n, O], then each BatchNorm's batch
    mean and biased variance). The second BatchNorm's statistics are summed as the second
    product's tiles are stored; its ReLU and the head run in one pass going forward and two
    going back (dp_fit_bn_relu_head*), so neither the head's input gradient nor the second
    ReLU's masked gradient is written."""

    @staticmethod
    def forward(ctx, x, w1, b1, g1, beta1, eps1: float, w2, b2, g2, beta2, eps2: float, wh, bh):
        out, stats, saved = _seed_forward(x, w1, b1, g1, beta1, eps1, w2, b2, g2, beta2, eps2,
                                          wh, bh)
        ctx.save_for_backward(*saved)
        ctx.mark_non_differentiable(*stats)
        return (out, *stats)

    @staticmethod
    def backward(ctx, grad_out, *_stats):
        g = _seed_backward(ctx.saved_tensors, grad_out.contiguous())
        return (None, *g[:4], None, *g[4:8], None, *g[8:])


def applies(layers: nn.Sequential, x: torch.Tensor) -> bool:
    """Whether the kernel runs `layers`' first four (input_batchnorm.applies holds, at most
    MAX_INPUTS inputs, a Linear with a bias follows the block, everything float32 on the
    CPU, the library builds)."""
    if (not ENABLED or len(layers) < 4 or not input_batchnorm.applies(layers, x)
            or x.shape[1] > MAX_INPUTS):
        return False
    linear = layers[3]
    return (type(linear) is nn.Linear and linear.bias is not None
            and x.dtype == torch.float32 and x.device.type == "cpu"
            and _plain(p for m in list(layers)[:4] for p in m.parameters())
            and native_build.unavailable() is None)


def _plain(params) -> bool:
    """Whether the kernels can read these parameters as they are: float32, on the CPU,
    contiguous."""
    return all(p.dtype == torch.float32 and p.device.type == "cpu" and p.is_contiguous()
               for p in params)


def is_seed_network(layers: nn.Sequential) -> bool:
    """Whether `layers` is, whole, the seed's form: after the first block and a Linear, a
    BatchNorm (as the first's), a ReLU and a Linear head (`applies` must hold as well), and
    both BatchNorms' running statistics are plain float32 (the kernels update them)."""
    if len(layers) != 7:
        return False
    norm, act, head = layers[4], layers[5], layers[6]
    return (input_batchnorm.trains_on_batch_stats(norm) and type(act) is nn.ReLU
            and type(head) is nn.Linear and head.bias is not None
            and _plain([*norm.parameters(), *head.parameters()])
            and _plain([n.running_mean for n in (layers[1], norm)]
                       + [n.running_var for n in (layers[1], norm)]))


def _seed_inputs(layers: nn.Sequential) -> tuple:
    """The seed-form network's parameters and epsilons in `_seed_forward`'s order."""
    lin1, norm1, _, lin2, norm2, _, head = layers
    return (lin1.weight, lin1.bias, norm1.weight, norm1.bias, norm1.eps,
            lin2.weight, lin2.bias, norm2.weight, norm2.bias, norm2.eps, head.weight, head.bias)


def _update_running_stats(layers: nn.Sequential, stats, n: int) -> None:
    """Both BatchNorms' running statistics from their batch means and biased variances, as
    `input_batchnorm.update_running_stats` and by the same code as `mse_step`."""
    lib = native_build.library()
    for norm, mean, var in ((layers[1], *stats[:2]), (layers[4], *stats[2:])):
        lib.dp_fit_running_stats(mean.numel(), n, _ptr(mean), _ptr(var), norm.momentum,
                                 *map(_ptr, (norm.running_mean, norm.running_var,
                                             norm.num_batches_tracked)))


def seed_network(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The whole seed-form network on x in training mode, both BatchNorms' running
    statistics updated."""
    out, *stats = _SeedNetwork.apply(x.contiguous(), *_seed_inputs(layers))
    _update_running_stats(layers, stats, x.shape[0])
    return out


def takes_mse_step(layers: nn.Sequential, x: torch.Tensor) -> bool:
    """Whether `mse_step` can fit `layers` on x: the kernels run the whole network
    (`applies` and `is_seed_network`), gradients are on and every parameter wants one."""
    return (isinstance(layers, nn.Sequential) and torch.is_grad_enabled()
            and applies(layers, x) and is_seed_network(layers)
            and all(p.requires_grad for p in layers.parameters()))


def mse_step(layers: nn.Sequential, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean squared error of the seed-form network on x against target [n, O], in
    training mode, and its gradients: what `loss = mean((layers(x) - target)^2)` then
    `loss.backward()` give after `zero_grad(set_to_none=True)` (the same gradients; the
    loss summed in double), in one native call (dp_fit_seed_mse) and the weight gradient's
    product, without autograd's graph. Sets every parameter's .grad (replacing it),
    updates both BatchNorms' running statistics (as `seed_network`, by the same code) and
    returns the loss (0-dim, no graph). `takes_mse_step` must hold."""
    lin1, norm1, _, lin2, norm2, _, head = layers
    assert isinstance(lin1, nn.Linear) and isinstance(lin2, nn.Linear)
    assert isinstance(head, nn.Linear)
    (n, d), width1, width2, heads = x.shape, lin1.out_features, lin2.out_features, head.out_features
    if target.shape != (n, heads):
        raise ValueError(f"target of shape {tuple(target.shape)} for {n} rows of {heads} outputs")
    x, target = x.contiguous(), target.to(x.dtype).contiguous()
    params = list(layers.parameters())
    grads = [torch.empty_like(p) for p in params]
    buffers = list(layers.buffers())  # each BatchNorm's running mean, variance and count
    y1, dh2 = x.new_empty((n, width1)), x.new_empty((n, width2))
    threads, lib = torch.get_num_threads(), native_build.library()
    work = torch.empty(lib.dp_fit_seed_mse_work(n, d, width1, width2, heads, threads),
                       dtype=torch.uint8)
    pointers = lambda ts: (ctypes.c_void_p * len(ts))(*map(_ptr, ts))  # noqa: E731
    loss = lib.dp_fit_seed_mse(n, d, width1, width2, heads, _ptr(x), _ptr(target),
                               pointers(params), pointers(grads), pointers(buffers),
                               *map(_ptr, (y1, dh2, work)), norm1.eps, norm2.eps,
                               norm1.momentum, norm2.momentum, threads)
    torch.mm(dh2.t(), y1, out=grads[4])  # W2's gradient
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad
    return torch.tensor(loss, dtype=x.dtype)


def input_block_linear(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """layers[3](relu(layers[1](layers[0](x)))) in training mode (layers[2] the ReLU),
    the BatchNorm's running statistics updated."""
    linear, norm, linear2 = layers[0], layers[1], layers[3]
    assert isinstance(norm, nn.BatchNorm1d)
    h, mean, var = _InputBlockLinear.apply(
        x.contiguous(), linear.weight, linear.bias, norm.weight, norm.bias, norm.eps,
        linear2.weight, linear2.bias)
    input_batchnorm.update_running_stats(norm, mean, var, x.shape[0])
    return h
