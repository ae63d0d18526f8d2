"""A dynamics model's whole planning rollout as one call of a native CPU kernel (C, AVX2,
OpenMP; models/native_kernel.c, built on first use by models/native_build.py).

On a CPU the torch path spends a plan call in about 8 small ops a horizon step and in
matmuls whose weights MKL repacks on every call (setting a of `dynaplan bench`: the
512 x 256 layer at 0.76-0.89 of the square-matmul rate on its own). The kernel instead:

- packs every hidden layer's weight once per fit, in 16-column panels that a 6 x 16
  register-blocked micro-kernel streams, and adds the bias and applies ReLU or SiLU in
  registers before the store (no separate activation pass: SiLU was 0.23-0.34 of
  setting c's floor as a torch op);
- runs the whole horizon in one call, each thread carrying its own rows through every
  step, so no op dispatch, no allocation and no synchronisation happen inside it;
- runs an optional learned reward MLP on the same input [s_t, a_t] in the same pass,
  writing rew [R, H]; the dynamics head adds its output to the state in place.

It returns `traj` [R, H + 1, O] (and `rew` [R, H] with a reward net), from which the
objective evaluates known rewards and terminations over all transitions, as after the
Triton kernel. The weights are FusedMLPs' (normalizers and BatchNorm folded in), each
network a FusedMLPs of K = 1, so dynamics and reward may differ in shape. Hidden widths are
zero-padded to multiples of 16: a padded unit's activation (ReLU or SiLU of 0) is 0.

Results equal the torch path's up to float32 rounding: the products sum in another order,
and SiLU's exponential is a polynomial (relative error about 2e-7).
"""

from __future__ import annotations

import ctypes

import torch

from dynaplan.models import native_build
from dynaplan.models.fused import FusedMLPs

MR, NR = 6, 16
"""The micro-kernel's rows and columns (native_kernel.c): row blocks and width padding."""
ACTIVATIONS = {"relu": 1, "silu": 2}


def unavailable() -> str | None:
    """Why the kernel cannot run here (one line), or None when it can be tried."""
    return native_build.unavailable()


def _ceil(n: int, k: int) -> int:
    return -(-n // k) * k


class NativeRollout:
    """state [R, O], actions [R, H, A] -> (traj [R, H + 1, O], rew [R, H] or None).

    `dynamics` and the optional learned `reward` are FusedMLPs of one network each (the
    reward's input is the dynamics' input, its output one number). A snapshot of their
    weights: build a new one after every fit. `threads` (default: torch's) splits the rows.
    """

    def __init__(self, dynamics: FusedMLPs, obs_dim: int, reward: FusedMLPs | None = None,
                 threads: int | None = None) -> None:
        self._lib = native_build.library()
        nets = [dynamics] if reward is None else [dynamics, reward]
        for net, out in zip(nets, (obs_dim, 1)):
            if net.k != 1:
                raise ValueError("NativeRollout runs networks of one model (FusedMLPs, K = 1)")
            if net.activation not in ACTIVATIONS:
                raise ValueError(f"the native kernel has no activation {net.activation!r}")
            if net.w_in.device.type != "cpu" or net.w_in.dtype != torch.float32:
                raise ValueError("the native rollout kernel runs float32 networks on the CPU")
            if net.w_out_t.shape[1] < out:
                raise ValueError("NativeRollout needs a dynamics network [obs, action] -> obs")
        in_dim = dynamics.w_in.shape[1]
        if in_dim <= obs_dim or (reward is not None and reward.w_in.shape[1] != in_dim):
            raise ValueError("NativeRollout needs a dynamics network [obs, action] -> obs")
        self.obs_dim, self.action_dim = obs_dim, in_dim - obs_dim
        self.threads = threads
        chunks: list[torch.Tensor] = []
        layout: list[int] = []
        offset = 0

        def put(t: torch.Tensor) -> int:
            nonlocal offset
            start = offset
            flat = t.detach().reshape(-1).float()
            chunks.append(flat)
            offset += _ceil(flat.numel(), NR)  # 64-byte aligned starts
            if offset > start + flat.numel():
                chunks.append(flat.new_zeros(offset - start - flat.numel()))
            return start

        self.width = 0
        for net, out in zip(nets, (obs_dim, 1)):
            weights = [(net.w_in[0], net.b_in[0, 0])]
            weights += [(w[0], b[0, 0]) for w, b in zip(net.ws, net.bs)]
            layout += [len(weights), ACTIVATIONS[net.activation], out]
            k = in_dim
            for w, b in weights:  # w [in, out]
                n = _ceil(w.shape[1], NR)
                padded = w.new_zeros(k, n)
                padded[: w.shape[0], : w.shape[1]] = w
                panels = padded.reshape(k, n // NR, NR).transpose(0, 1)  # [n / NR, k, NR]
                bias = torch.cat([b, b.new_zeros(n - b.numel())])
                layout += [k, n, put(panels), put(bias)]
                self.width, k = max(self.width, n), n
            w_head = net.w_out_t[0, :out]  # [out, h]
            head = w_head.new_zeros(out, k)
            head[:, : w_head.shape[1]] = w_head
            layout += [k, put(head), put(net.b_out[0, 0, :out])]
        self.params = torch.cat(chunks)
        self.layout = torch.tensor(layout, dtype=torch.long)
        self.nets = len(nets)
        self._scratch = torch.empty(0)

    def __call__(self, state: torch.Tensor, actions: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows, horizon, act_dim = actions.shape
        o = self.obs_dim
        if state.shape != (rows, o) or act_dim != self.action_dim:
            raise ValueError(f"state [R, {o}] and actions [R, H, {self.action_dim}] expected, "
                             f"got {tuple(state.shape)} and {tuple(actions.shape)}")
        if state.device.type != "cpu" or actions.device.type != "cpu":
            raise ValueError("the native rollout kernel runs on CPU tensors")
        state = state.contiguous().float()
        actions = actions.contiguous().float()
        threads = self.threads or torch.get_num_threads()
        blocks = -(-rows // MR)
        per_part = -(-blocks // threads) * MR  # the rows of a part's row blocks, at most
        need = threads * per_part * (o + act_dim + 2 * self.width)
        if self._scratch.numel() < need:
            self._scratch = torch.empty(need)
        traj = state.new_empty(rows, horizon + 1, o)
        rew = state.new_empty(rows, horizon) if self.nets > 1 else None
        ptr = lambda t: ctypes.c_void_p(t.data_ptr())  # noqa: E731
        status = self._lib.dp_rollout(
            rows, horizon, o, act_dim, ptr(state), ptr(actions), ptr(traj),
            None if rew is None else ptr(rew), self.nets, ptr(self.layout), ptr(self.params),
            ptr(self._scratch), per_part, self.width, threads)
        if status != 0:
            raise RuntimeError("the native rollout kernel refused its layout (a dynaplan bug)")
        return traj, rew
