"""A dynamics model's whole planning rollout as one call of a native CPU kernel (C, AVX2,
OpenMP; accel/native_kernel.c, built on first use by accel/native_build.py).

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
Triton kernel. The weights are FusedMLPs' or FusedEnsemble's (normalizers and BatchNorm
folded in), each MLP a FusedMLPs of K = 1, so dynamics and reward may differ in shape.
Hidden widths are zero-padded to multiples of 16: a padded unit's activation (ReLU or SiLU
of 0) is 0. A TS-inf ensemble runs one call per member, over that member's rows; a
sampled member adds std * noise, std from its bounded log-variance head.

Results equal the torch path's up to float32 rounding: the products sum in another order,
and SiLU's exponential is a polynomial (relative error about 2e-7).
"""

from __future__ import annotations

import ctypes

import torch

from dynaplan.accel import native_build
from dynaplan.accel.fused import FusedMLPs
from dynaplan.accel.fused_ensemble import FusedEnsemble, ensemble_layers

MR, NR = 6, 16
"""The micro-kernel's rows and columns (native_kernel.c): row blocks and width padding."""
ACTIVATIONS = {"relu": 1, "silu": 2}


def unavailable() -> str | None:
    """Why the kernel cannot run here (one line), or None when it can be tried."""
    return native_build.unavailable()


def _ceil(n: int, k: int) -> int:
    return -(-n // k) * k


class NativeRollout:
    """state [R, O], actions [R, H, A] (, noise) -> (traj [R, H + 1, O], rew [R, H] or
    None).

    `dynamics` is a FusedMLPs of one network, or a FusedEnsemble propagated by TS-inf:
    rows interleave the members (row g * E + e keeps member e, as `EnsembleDynamics` lays
    them out), each member's rows run through its own weights, and with `sample` a step
    adds std * noise, noise [H, E, R / E, O] drawn by `EnsembleDynamics.draw_noise` (the
    torch path's draws). The optional learned `reward` is a FusedMLPs of one network on
    the same input. A snapshot of the weights: build a new one after every fit. `threads`
    (default: torch's) splits the rows.
    """

    def __init__(self, dynamics: FusedMLPs | FusedEnsemble, obs_dim: int,
                 reward: FusedMLPs | None = None, threads: int | None = None,
                 sample: bool = False) -> None:
        self._lib = native_build.library()
        for net in (dynamics, reward):
            if isinstance(net, FusedMLPs) and net.k != 1:
                raise ValueError("NativeRollout runs networks of one model (FusedMLPs, K = 1)")
            if net is not None and net.activation not in ACTIVATIONS:
                raise ValueError(f"the native kernel has no activation {net.activation!r}")
        if isinstance(dynamics, FusedEnsemble):
            layers, (w_mean, b_mean), var = ensemble_layers(dynamics)
            self.members, self.sample = dynamics.members, sample
            members = [([(w[e], b[e]) for w, b in layers], (w_mean[e].t(), b_mean[e]),
                        (var[0][e].t(), var[1][e], *var[2:]) if sample else None)
                       for e in range(self.members)]
        else:
            if dynamics.w_out_t.shape[1] < obs_dim:
                raise ValueError("NativeRollout needs a dynamics network [obs, action] -> obs")
            self.members, self.sample = 1, False
            members = [(_mlp_layers(dynamics),
                        (dynamics.w_out_t[0, :obs_dim], dynamics.b_out[0, 0, :obs_dim]), None)]
        first = members[0][0][0][0]
        for w in (first, None if reward is None else reward.w_in):
            if w is not None and (w.device.type != "cpu" or w.dtype != torch.float32):
                raise ValueError("the native rollout kernel runs float32 networks on the CPU")
        in_dim = first.shape[0]
        if in_dim <= obs_dim or (reward is not None and reward.w_in.shape[1] != in_dim):
            raise ValueError("NativeRollout needs a dynamics network [obs, action] -> obs")
        self.obs_dim, self.action_dim = obs_dim, in_dim - obs_dim
        self.threads = threads
        self._chunks: list[torch.Tensor] = []
        self._offset = 0
        self.width = 0
        rew_layout = [] if reward is None else self._pack(
            _mlp_layers(reward), reward.activation,
            (reward.w_out_t[0, :1], reward.b_out[0, 0, :1]), None)
        activation = dynamics.activation
        self.layouts = [torch.tensor(self._pack(layers, activation, head, var) + rew_layout,
                                     dtype=torch.long) for layers, head, var in members]
        self.params = torch.cat(self._chunks)
        del self._chunks
        self.nets = 1 if reward is None else 2
        self._scratch = torch.empty(0)

    def _put(self, t: torch.Tensor) -> int:
        """Append `t` to the parameter buffer at a 64-byte aligned offset; its offset."""
        start, flat = self._offset, t.detach().reshape(-1).float()
        self._offset += _ceil(flat.numel(), NR)
        self._chunks += [flat, flat.new_zeros(self._offset - start - flat.numel())]
        return start

    def _pack(self, layers, activation: str, head, var) -> list[int]:
        """One network's layout (native_kernel.c's net_t) with its weights packed: hidden
        layers [(w [in, out], b [out])] as zero-padded 16-column panels, the head (w
        [D, h], b [D]) and an optional log-variance head with its bounds."""
        layout = [len(layers), ACTIVATIONS[activation], head[0].shape[0]]
        k = layers[0][0].shape[0]
        for w, b in layers:
            n = _ceil(w.shape[1], NR)
            padded = w.new_zeros(k, n)
            padded[: w.shape[0], : w.shape[1]] = w
            panels = padded.reshape(k, n // NR, NR).transpose(0, 1)  # [n / NR, k, NR]
            bias = torch.cat([b, b.new_zeros(n - b.numel())])
            layout += [k, n, self._put(panels), self._put(bias)]
            self.width, k = max(self.width, n), n
        heads = [head] if var is None else [head, var[:2]]
        padded_heads = []
        for w, b in heads:
            wide = w.new_zeros(w.shape[0], k)
            wide[:, : w.shape[1]] = w
            padded_heads.append((self._put(wide), self._put(b)))
        layout += [k, *padded_heads[0], int(var is not None)]
        if var is not None:
            layout += [*padded_heads[1], *(self._put(v) for v in var[2:])]
        return layout

    def __call__(self, state: torch.Tensor, actions: torch.Tensor,
                 noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows, horizon, act_dim = actions.shape
        o, e = self.obs_dim, self.members
        if state.shape != (rows, o) or act_dim != self.action_dim:
            raise ValueError(f"state [R, {o}] and actions [R, H, {self.action_dim}] expected, "
                             f"got {tuple(state.shape)} and {tuple(actions.shape)}")
        if state.device.type != "cpu" or actions.device.type != "cpu":
            raise ValueError("the native rollout kernel runs on CPU tensors")
        if rows % e:
            raise ValueError(f"rows ({rows}) must be a multiple of the members ({e})")
        if self.sample and (noise is None or noise.shape != (horizon, e, rows // e, o)):
            raise ValueError(f"a sampled rollout needs noise of shape "
                             f"{(horizon, e, rows // e, o)}")
        state, actions = state.float().contiguous(), actions.float().contiguous()
        traj = state.new_empty(rows, horizon + 1, o)
        rew = state.new_empty(rows, horizon) if self.nets > 1 else None
        if e == 1:
            self._run(state, actions, None if noise is None else noise[:, 0], traj, rew)
            return traj, rew
        group = rows // e  # member m's rows: m, m + e, m + 2 e, ...
        traj_m = state.new_empty(group, horizon + 1, o)
        rew_m = None if rew is None else state.new_empty(group, horizon)
        for m in range(e):
            self._run(state.view(group, e, o)[:, m],
                      actions.view(group, e, horizon, act_dim)[:, m],
                      None if noise is None else noise[:, m], traj_m, rew_m, m)
            traj.view(group, e, horizon + 1, o)[:, m] = traj_m
            if rew is not None and rew_m is not None:
                rew.view(group, e, horizon)[:, m] = rew_m
        return traj, rew

    def _run(self, state, actions, noise, traj, rew, member: int = 0) -> None:
        """One kernel call: the rows of one member (contiguous outputs `traj`, `rew`)."""
        state, actions = state.contiguous(), actions.contiguous()
        noise = None if noise is None or not self.sample else noise.contiguous()
        rows, horizon, act_dim = actions.shape
        o = self.obs_dim
        threads = self.threads or torch.get_num_threads()
        blocks = -(-rows // MR)
        per_part = -(-blocks // threads) * MR  # the rows of a part's row blocks, at most
        need = threads * per_part * (2 * o + act_dim + 2 * self.width)
        if self._scratch.numel() < need:
            self._scratch = torch.empty(need)
        ptr = lambda t: None if t is None else ctypes.c_void_p(t.data_ptr())  # noqa: E731
        status = self._lib.dp_rollout(
            rows, horizon, o, act_dim, ptr(state), ptr(actions), ptr(noise), ptr(traj),
            ptr(rew), self.nets, ptr(self.layouts[member]), ptr(self.params),
            ptr(self._scratch), per_part, self.width, threads)
        if status != 0:
            raise RuntimeError("the native rollout kernel refused its layout (a dynaplan bug)")


def _mlp_layers(net: FusedMLPs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A FusedMLPs' (K = 1) hidden layers as (w [in, out], b [out])."""
    return [(net.w_in[0], net.b_in[0, 0]), *((w[0], b[0, 0]) for w, b in zip(net.ws, net.bs))]
