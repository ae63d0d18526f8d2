"""A fitting step's first two layers in native code: the block Linear -> BatchNorm -> ReLU
of `input_batchnorm` and the Linear after it, on the CPU (models/native_fit.c, built with
the rollout kernel by models/native_build.py).

On the seed's networks these layers are the [batch, 512] half of a fitting step, and most
of its time outside the matmuls was passes over [batch, 512] tensors: the first layer's
output, its ReLU, the ReLU's backward mask and the masked gradient. Here:

- forward: y = relu(z F^T) in one pass that writes y (z = [x - mean(x), 1], F the folded
  first layer, as in `input_batchnorm`), then the second layer's product C = y W^T + b;
- backward: the second layer's weight gradient g^T y (torch's matmul) and bias gradient,
  and of the second layer's input gradient g W only what the first block needs:
  z^T ((g W) * (y > 0)), [in + 1, width]. The kernel reduces each 6 x 16 tile of g W in
  registers, so the [batch, width] input gradient is never written or read back.

Both products run the rollout kernel's register-blocked micro-kernel (native_gemm.h),
which on this 2-core CPU beats torch's matmul on these shapes by about a fifth; the third
product, the weight gradient, stays torch's, which is faster for its long inner dimension.

The results are the layer-by-layer path's (float32 rounding aside, test_native_fit.py).
The kernel runs where the native library builds (native_build.unavailable() is None) and
the layers are float32 on the CPU; elsewhere, and when `ENABLED` is False, `input_batchnorm`
does the block in torch ops.
"""

from __future__ import annotations

import torch
from torch import nn

from dynaplan.models import input_batchnorm, native_build

ENABLED = True
"""Set False to fit with torch ops only (the A/B in benchmarks/native_fit_ab.py)."""

MR, NR, MC = 6, 16, 96  # native_gemm.h's micro-kernel, native_fit.c's row chunks
MAX_INPUTS = 64
"""The widest input the kernel takes: its first layer is a plain loop over the inputs, and
its statistics cost width x inputs^2 (torch ops take wider inputs)."""


def _ceil(n: int, m: int) -> int:
    return -(-n // m) * m


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


class _InputBlockLinear(torch.autograd.Function):
    """linear2(relu(batchnorm(x W1^T + b1))) with batch statistics, for data x [n, in]:
    returns (h [n, out], the block's batch mean [width], its biased variance [width])."""

    @staticmethod
    def forward(ctx, x, w1, b1, gamma, beta, eps: float, w2, b2):
        lib, threads = native_build.library(), torch.get_num_threads()
        (n, d), width, out = x.shape, w1.shape[0], w2.shape[0]
        z, y = x.new_empty((n, d + 1)), x.new_empty((n, width))
        mean, var, invstd, scale = x.new_empty((4, width))
        wc, folded_t = x.new_empty((width, d)), x.new_empty((d + 1, width))
        work = torch.empty(d + d * d, dtype=torch.float64)
        lib.dp_fit_input_block(n, d, width, *map(_ptr, (x, w1, b1, gamma, beta)), eps,
                               *map(_ptr, (z, y, mean, var, invstd, scale, wc, folded_t, work)),
                               threads)
        h = x.new_empty((n, out))
        scratch = x.new_empty(_ceil(out, NR) * width + threads * (MC * width + MR * NR))
        lib.dp_fit_linear(n, width, out, _ptr(y), _ptr(w2), _ptr(b2), _ptr(h), _ptr(scratch),
                          threads)
        ctx.save_for_backward(y, z, w1, w2, invstd, scale, wc)
        ctx.mark_non_differentiable(mean, var)
        return h, mean, var

    @staticmethod
    def backward(ctx, grad_h, _grad_mean, _grad_var):
        y, z, w1, w2, invstd, scale, wc = ctx.saved_tensors
        lib, threads = native_build.library(), torch.get_num_threads()
        g = grad_h.contiguous()
        n, out, width, d = g.shape[0], g.shape[1], y.shape[1], z.shape[1]
        grad_w1, (grad_gamma, grad_beta) = torch.empty_like(w1), g.new_empty((2, width))
        scratch = g.new_empty(_ceil(width, NR) * out
                              + threads * (MC * out + MR * NR + d * _ceil(width, NR)))
        lib.dp_fit_input_block_backward(
            n, out, width, _ptr(g), _ptr(w2), _ptr(y), _ptr(z), d,
            *map(_ptr, (w1, invstd, scale, wc, grad_w1, grad_gamma, grad_beta, scratch)),
            threads)
        grad_b1 = torch.zeros_like(grad_beta) if ctx.needs_input_grad[2] else None
        grad_w2 = torch.mm(g.t(), y) if ctx.needs_input_grad[6] else None
        grad_b2 = g.sum(0) if ctx.needs_input_grad[7] else None
        return None, grad_w1, grad_b1, grad_gamma, grad_beta, None, grad_w2, grad_b2


def applies(layers: nn.Sequential, x: torch.Tensor) -> bool:
    """Whether the kernel runs `layers`' first four (input_batchnorm.applies holds, at most
    MAX_INPUTS inputs, a Linear with a bias follows the block, everything float32 on the
    CPU, the library builds)."""
    if (not ENABLED or len(layers) < 4 or not input_batchnorm.applies(layers, x)
            or x.shape[1] > MAX_INPUTS):
        return False
    linear = layers[3]
    tensors = [x, layers[0].weight, layers[1].weight, linear.weight]
    return (type(linear) is nn.Linear and linear.bias is not None
            and all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors)
            and native_build.unavailable() is None)


def input_block_linear(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """layers[3](relu(layers[1](layers[0](x)))) in training mode (layers[2] the ReLU),
    the BatchNorm's running statistics updated."""
    linear, norm, linear2 = layers[0], layers[1], layers[3]
    h, mean, var = _InputBlockLinear.apply(
        x.contiguous(), linear.weight, linear.bias, norm.weight, norm.bias, norm.eps,
        linear2.weight, linear2.bias)
    input_batchnorm.update_running_stats(norm, mean, var, x.shape[0])
    return h
