"""A dynamics model's whole planning rollout as one GPU kernel (Triton): a single MLP, or a
probabilistic ensemble propagated by TS-inf.

On a GPU the torch path runs each planning step as about 15 kernels (setting c of
`dynaplan bench`: 5 matmuls, 4 activations and their bias copies, 14.8 kernels a step by
the census in benchmarks/SPEED_HISTORY.md section 6), each a few microseconds long, 30
steps a call and 5 calls a plan. `TritonRollout` runs the whole horizon in one launch
instead. Rows are independent along the horizon, so each program owns `BLOCK_M` rows and
carries their state through every step itself:

- the state lives in registers, padded to `KI` columns, with the step's action added to
  it as the input [s_t, a_t] of the first layer;
- each layer's activations go through the program's own scratch rows (two [BLOCK_M, P]
  buffers taken in turn, small enough to stay in cache), read back in [BLOCK_M, BLOCK]
  tiles for the next layer's `tl.dot`;
- the head adds the predicted change to the state, and the kernel writes the state of
  every step: `traj` [R, H + 1, O], from which the objective evaluates rewards and
  terminations over all R x H transitions at once, as it does on the torch path.

The weights are FusedMLPs' or FusedEnsemble's (normalizers and BatchNorm folded in),
zero-padded once per fit: every hidden width to P, a multiple of `BLOCK`, the input to KI
columns, the head to KI outputs. Padded units have zero weights and bias, so their
activations (ReLU or SiLU of 0) are 0 and change nothing.

An ensemble of E members runs TS-inf: rows interleave the members (row g * E + e keeps
member e, as `EnsembleDynamics` lays them out), each program takes rows of one member,
and a sampled step adds std * noise, std from the member's bounded log-variance. The
noise [H, E, R / E, O] is drawn before the launch by `EnsembleDynamics.draw_noise`, with
the same generator calls in the same order as the torch path, so both plan from the same
numbers.

Precision: "ieee" multiplies in full float32 (the torch path's results, up to rounding
order), "tf32" on the tensor cores (`--tf32 on`).

On CUDA tensors the kernel is compiled by Triton. On CPU tensors it runs in Triton's
interpreter (numpy, far slower): that is how the CPU tests check its arithmetic; it is
not a CPU speed path.
"""

from __future__ import annotations

import importlib.util

import torch

from dynaplan.accel.fused import FusedMLPs
from dynaplan.accel.fused_ensemble import FusedEnsemble, ensemble_layers

BLOCK = 32
"""Width of the column tiles of every layer (and the step of the hidden padding)."""
BLOCK_M = 16
"""Rows a program carries through the horizon (tl.dot's smallest M)."""


def unavailable() -> str | None:
    """Why the kernel cannot run here (a one-line reason), or None when it can."""
    if importlib.util.find_spec("triton") is None:  # an optional dependency
        return "the Triton rollout kernel needs the triton package (pip install triton)"
    return None


def _pad(t: torch.Tensor, *shape: int) -> torch.Tensor:
    """`t` zero-padded at the end of each dimension to `shape`."""
    out = t.new_zeros(shape)
    out[tuple(slice(0, n) for n in t.shape)] = t
    return out


class TritonRollout:
    """state [R, O], actions [R, H, A] (, noise) -> traj [R, H + 1, O]: the states the
    dynamics model predicts along each row's action sequence. `net` is a FusedMLPs of one
    dynamics network, or a FusedEnsemble (TS-inf; `sample`: add the Gaussian noise).

    A snapshot of `net`'s weights, like `net` itself: build a new one after every fit.
    `block` (the column tile, a power of two >= 16), `block_m` (rows a program carries, a
    power of two >= 16) and `num_warps` are the launch's tuning knobs; the defaults are a
    guess that `benchmarks/triton_rollout_ab.py` is there to replace with measured values.
    """

    def __init__(self, net: FusedMLPs | FusedEnsemble, obs_dim: int, tf32: bool = False,
                 block: int = BLOCK, block_m: int = BLOCK_M, num_warps: int = 4,
                 sample: bool = False) -> None:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        from dynaplan.accel import triton_kernel

        self._kernel = triton_kernel
        for name, value in (("block", block), ("block_m", block_m)):
            if value < 16 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 16, got {value}")
        if isinstance(net, FusedEnsemble):
            layers, head, var = ensemble_layers(net)
            self.members, self.sample = net.members, sample
        else:
            if net.k != 1:
                raise ValueError("TritonRollout runs one network (a FusedMLPs of K = 1)")
            layers = [(net.w_in, net.b_in[:, 0])]  # each [1, ...]: one member
            layers += [(w, b[:, 0]) for w, b in zip(net.ws, net.bs)]
            head, var = (net.w_out_t.transpose(1, 2), net.b_out[:, 0]), None
            self.members, self.sample = 1, False
        in_dim = layers[0][0].shape[1]
        if in_dim <= obs_dim or head[0].shape[2] != obs_dim:
            raise ValueError("TritonRollout needs a dynamics network: [obs, action] -> obs")
        e = self.members
        self.obs_dim, self.action_dim = obs_dim, in_dim - obs_dim
        self.block, self.block_m, self.num_warps = block, block_m, num_warps
        self.ki = max(16, 1 << (in_dim - 1).bit_length())
        widths = [w.shape[2] for w, _ in layers]
        self.p = p = -(-max(widths) // block) * block
        self.silu = net.activation == "silu"
        self.precision = "tf32" if tf32 else "ieee"
        ki = self.ki
        (w_in, b_in), hidden = layers[0], layers[1:]
        self.w_in, self.b_in = _pad(w_in, e, ki, p), _pad(b_in, e, p)
        self.layers = len(hidden)
        padded = [(_pad(w, e, p, p), _pad(b, e, p)) for w, b in hidden]
        padded = padded or [(w_in.new_zeros(e, p, p), w_in.new_zeros(e, p))]  # NL = 0: a dummy
        self.w_hid = torch.stack([w for w, _ in padded], dim=1)
        self.b_hid = torch.stack([b for _, b in padded], dim=1)
        self.w_out, self.b_out = _pad(head[0], e, p, ki), _pad(head[1], e, ki)
        if var is None:  # unused by the kernel without noise: any tensor of the right type
            var = (self.w_out, self.b_out, *(self.b_out[0],) * 3)
        else:
            var = (_pad(var[0], e, p, ki), _pad(var[1], e, ki), *(_pad(c, ki) for c in var[2:]))
        self.w_var, self.b_var, self.var_max, self.var_span, self.var_offset = var
        self._scratch: torch.Tensor | None = None

    def _scratch_for(self, programs: int, like: torch.Tensor) -> torch.Tensor:
        """The programs' activation buffers, kept between calls (a CUDA graph replays the
        addresses it captured) and grown when a call needs more."""
        need = programs * 2 * self.block_m * self.p
        if self._scratch is None or self._scratch.numel() < need or \
                self._scratch.device != like.device:
            self._scratch = like.new_empty(need)
        return self._scratch

    def __call__(self, state: torch.Tensor, actions: torch.Tensor,
                 noise: torch.Tensor | None = None) -> torch.Tensor:
        """noise [H, E, R / E, O], standard normal: required when sampling, else unused."""
        if state.device.type != "cuda" and not self._kernel.INTERPRETED:
            raise RuntimeError("the Triton rollout kernel runs on CUDA tensors (on a CPU only "
                               "in Triton's interpreter: TRITON_INTERPRET=1)")
        rows, horizon, _ = actions.shape
        e = self.members
        if rows % e:
            raise ValueError(f"rows ({rows}) must be a multiple of the members ({e})")
        if self.sample:
            if noise is None or noise.shape != (horizon, e, rows // e, self.obs_dim):
                raise ValueError(f"a sampled rollout needs noise of shape "
                                 f"{(horizon, e, rows // e, self.obs_dim)}")
            noise = noise.contiguous()
        else:
            noise = state  # not read
        state, actions = state.contiguous(), actions.contiguous()
        traj = state.new_empty(rows, horizon + 1, self.obs_dim)
        programs = e * -(-(rows // e) // self.block_m)
        self._kernel.rollout_kernel[(programs,)](
            state, actions, noise, traj, self.w_in, self.b_in, self.w_hid, self.b_hid,
            self.w_out, self.b_out, self.w_var, self.b_var, self.var_max, self.var_span,
            self.var_offset, self._scratch_for(programs, state), rows, horizon,
            **self.constexprs(), num_warps=self.num_warps)
        return traj

    def constexprs(self) -> dict:
        """The kernel's compile-time arguments for this network and these tiles (also what
        benchmarks/triton_compile_check.py compiles with)."""
        return dict(OBS=self.obs_dim, ACT=self.action_dim, KI=self.ki, P=self.p,
                    NL=self.layers, E=self.members, BM=self.block_m, BN=self.block,
                    SILU=self.silu, NOISE=self.sample, PRECISION=self.precision)
