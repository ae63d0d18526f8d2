"""A dynamics MLP's whole planning rollout as one GPU kernel (Triton).

On a GPU the torch path runs each planning step as about 15 kernels (setting c of
`dynaplan bench`: 5 matmuls, 4 activations and their bias copies, 14.8 kernels a step by
the census in BENCHMARKS.md), each a few microseconds long, 30 steps a call and 5 calls a
plan. `TritonRollout` runs the whole horizon in one launch instead. Rows are independent
along the horizon, so each program owns `BLOCK_M` rows and carries their state through
every step itself:

- the state lives in registers, padded to `KI` columns, with the step's action added to
  it as the input [s_t, a_t] of the first layer;
- each layer's activations go through the program's own scratch rows (two [BLOCK_M, P]
  buffers taken in turn, small enough to stay in cache), read back in [BLOCK_M, BLOCK]
  tiles for the next layer's `tl.dot`;
- the head adds the predicted change to the state, and the kernel writes the state of
  every step: `traj` [R, H + 1, O], from which the objective evaluates rewards and
  terminations over all R x H transitions at once, as it does on the torch path.

The weights are FusedMLPs' (normalizers and BatchNorm folded in), zero-padded once per
fit: every hidden width to P, a multiple of `BLOCK`, the input to KI columns, the head to
KI outputs. Padded units have zero weights and bias, so their activations (ReLU or SiLU of
0) are 0 and change nothing.

Precision: "ieee" multiplies in full float32 (the torch path's results, up to rounding
order), "tf32" on the tensor cores (`--tf32 on`).

On CUDA tensors the kernel is compiled by Triton. On CPU tensors it runs in Triton's
interpreter (numpy, far slower): that is how the CPU tests check its arithmetic; it is
not a CPU speed path.
"""

from __future__ import annotations

import importlib.util

import torch

from dynaplan.models.fused import FusedMLPs

BLOCK = 32
"""Width of the column tiles of every layer (and the step of the hidden padding)."""
BLOCK_M = 16
"""Rows a program carries through the horizon (tl.dot's smallest M)."""


def unavailable() -> str | None:
    """Why the kernel cannot run here (a one-line reason), or None when it can."""
    if importlib.util.find_spec("triton") is None:  # an optional dependency
        return "the Triton rollout kernel needs the triton package (pip install triton)"
    return None


def _pad(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    out = t.new_zeros(rows, cols)
    out[: t.shape[0], : t.shape[1]] = t
    return out


class TritonRollout:
    """state [R, O], actions [R, H, A] -> traj [R, H + 1, O]: the states a single dynamics
    MLP (a FusedMLPs of one network) predicts along each row's action sequence.

    A snapshot of `net`'s weights, like FusedMLPs itself: build a new one after every fit.
    `block` (the column tile, a power of two >= 16), `block_m` (rows a program carries, a
    power of two >= 16) and `num_warps` are the launch's tuning knobs; the defaults are a
    guess that `benchmarks/triton_rollout_ab.py` is there to replace with measured values.
    """

    def __init__(self, net: FusedMLPs, obs_dim: int, tf32: bool = False, block: int = BLOCK,
                 block_m: int = BLOCK_M, num_warps: int = 4) -> None:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        from dynaplan.models import triton_kernel

        self._kernel = triton_kernel
        if net.k != 1:
            raise ValueError("TritonRollout runs one network (a FusedMLPs of K = 1)")
        for name, value in (("block", block), ("block_m", block_m)):
            if value < 16 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 16, got {value}")
        w_in, ws, w_out_t = net.w_in[0], [w[0] for w in net.ws], net.w_out_t[0]
        in_dim = w_in.shape[0]
        if in_dim <= obs_dim or w_out_t.shape[0] != obs_dim:
            raise ValueError("TritonRollout needs a dynamics network: [obs, action] -> obs")
        widths = [w_in.shape[1], *(w.shape[1] for w in ws)]
        self.obs_dim, self.action_dim = obs_dim, in_dim - obs_dim
        self.block, self.block_m, self.num_warps = block, block_m, num_warps
        self.ki = max(16, 1 << (in_dim - 1).bit_length())
        self.p = -(-max(widths) // block) * block
        self.silu = net.activation == "silu"
        self.precision = "tf32" if tf32 else "ieee"
        p, ki = self.p, self.ki
        self.w_in = _pad(w_in, ki, p)
        self.b_in = _pad(net.b_in[0], 1, p)[0]
        self.layers = len(ws)
        hid = [_pad(w, p, p) for w in ws] or [w_in.new_zeros(p, p)]  # a dummy when NL = 0
        self.w_hid = torch.stack(hid).contiguous()
        self.b_hid = torch.stack([_pad(b[0], 1, p)[0] for b in net.bs] or [w_in.new_zeros(p)])
        self.w_out = _pad(w_out_t.t(), p, ki)
        self.b_out = _pad(net.b_out[0], 1, ki)[0]
        self._scratch: torch.Tensor | None = None

    def _scratch_for(self, programs: int, like: torch.Tensor) -> torch.Tensor:
        """The programs' activation buffers, kept between calls (a CUDA graph replays the
        addresses it captured) and grown when a call needs more."""
        need = programs * 2 * self.block_m * self.p
        if self._scratch is None or self._scratch.numel() < need or \
                self._scratch.device != like.device:
            self._scratch = like.new_empty(need)
        return self._scratch

    def __call__(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if state.device.type != "cuda" and not self._kernel.INTERPRETED:
            raise RuntimeError("the Triton rollout kernel runs on CUDA tensors (on a CPU only "
                               "in Triton's interpreter: TRITON_INTERPRET=1)")
        rows, horizon, _ = actions.shape
        state, actions = state.contiguous(), actions.contiguous()
        traj = state.new_empty(rows, horizon + 1, self.obs_dim)
        programs = -(-rows // self.block_m)
        self._kernel.rollout_kernel[(programs,)](
            state, actions, traj, self.w_in, self.b_in, self.w_hid, self.b_hid, self.w_out,
            self.b_out, self._scratch_for(programs, state), rows, horizon,
            OBS=self.obs_dim, ACT=self.action_dim, KI=self.ki, P=self.p, NL=self.layers,
            BM=self.block_m, BN=self.block, SILU=self.silu, PRECISION=self.precision,
            num_warps=self.num_warps)
        return traj
