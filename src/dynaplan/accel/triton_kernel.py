"""The Triton kernel behind `TritonRollout` (accel/triton_rollout.py), which documents
it. Imported only when a TritonRollout is built, so that importing dynaplan never loads
triton."""

from __future__ import annotations

import os

import triton
import triton.language as tl

INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
"""Triton reads TRITON_INTERPRET when it is imported: kernels then run in its interpreter,
on CPU tensors (the CPU tests set it in tests/conftest.py)."""


@triton.jit
def _activate(h, SILU: tl.constexpr):
    """SiLU or ReLU of a tile."""
    if SILU:
        h = h / (1.0 + tl.exp(-h))
    else:
        h = tl.maximum(h, 0.0)
    return h


@triton.jit
def _softplus(x):
    """log(1 + e^x), as torch's softplus (linear above 20)."""
    return tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(tl.minimum(x, 20.0))))


@triton.jit
def rollout_kernel(state0, actions, noise, traj, w_in, b_in, w_hid, b_hid, w_out, b_out,
                   w_var, b_var, var_max, var_span, var_offset, scratch, R, H,
                   OBS: tl.constexpr, ACT: tl.constexpr, KI: tl.constexpr,
                   P: tl.constexpr, NL: tl.constexpr, E: tl.constexpr, BM: tl.constexpr,
                   BN: tl.constexpr, SILU: tl.constexpr, NOISE: tl.constexpr,
                   PRECISION: tl.constexpr):
    # (each loop names its own tiles: Triton types a name once per scope)
    pid = tl.program_id(0)
    member = pid % E  # TS-inf: row g * E + e always runs member e
    groups = R // E
    group = (pid // E) * BM + tl.arange(0, BM)
    rows = group * E + member
    live = group < groups
    cols = tl.arange(0, KI)  # the padded [state, action] columns
    tile = tl.arange(0, BN)
    local = tl.arange(0, BM)  # this program's scratch rows
    state_cols = live[:, None] & (cols[None, :] < OBS)
    action_cols = live[:, None] & (cols[None, :] >= OBS) & (cols[None, :] < OBS + ACT)
    step = (H + 1) * OBS  # one row of traj
    s = tl.load(state0 + rows[:, None] * OBS + cols[None, :], mask=state_cols, other=0.0)
    tl.store(traj + rows[:, None] * step + cols[None, :], s, mask=state_cols)
    # this member's weights
    w_in += member * (KI * P)
    b_in += member * P
    w_hid += member * (NL * P * P)
    b_hid += member * (NL * P)
    w_out += member * (P * KI)
    head_bias = tl.load(b_out + member * KI + cols)
    if NOISE:  # a Gaussian member's log-variance head and bounds
        w_var += member * (P * KI)
        var_bias = tl.load(b_var + member * KI + cols)
        vmax = tl.load(var_max + cols)
        vspan = tl.load(var_span + cols)
        voffset = tl.load(var_offset + cols)
    buf = scratch + pid * (2 * BM * P)
    for t in range(H):
        a = tl.load(actions + rows[:, None] * (H * ACT) + t * ACT + (cols[None, :] - OBS),
                    mask=action_cols, other=0.0)
        x = s + a  # [s_t, a_t, 0...]: the state's padding columns are zero
        # first layer: [BM, KI] @ [KI, P], tile by tile into buffer 0
        for n0 in range(P // BN):
            w0 = tl.load(w_in + cols[:, None] * P + n0 * BN + tile[None, :])
            h0 = tl.dot(x, w0, input_precision=PRECISION)
            h0 = _activate(h0 + tl.load(b_in + n0 * BN + tile)[None, :], SILU)
            tl.store(buf + local[:, None] * P + n0 * BN + tile[None, :], h0)
        tl.debug_barrier()
        # hidden-to-hidden layers, buffer (layer % 2) -> buffer ((layer + 1) % 2)
        for layer in tl.static_range(NL):
            src = buf + (layer % 2) * (BM * P)
            dst = buf + ((layer + 1) % 2) * (BM * P)
            w_l = w_hid + layer * (P * P)
            for n1 in range(P // BN):
                acc = tl.zeros((BM, BN), dtype=tl.float32)
                for k1 in range(P // BN):
                    h1 = tl.load(src + local[:, None] * P + k1 * BN + tile[None, :])
                    w1 = tl.load(w_l + (k1 * BN + tile)[:, None] * P + n1 * BN
                                 + tile[None, :])
                    acc = tl.dot(h1, w1, acc, input_precision=PRECISION)
                acc = _activate(acc + tl.load(b_hid + layer * P + n1 * BN + tile)[None, :],
                                SILU)
                tl.store(dst + local[:, None] * P + n1 * BN + tile[None, :], acc)
            tl.debug_barrier()
        # head: the change of state (padding columns stay zero); a sampled Gaussian
        # member adds std * noise, std from its bounded log-variance
        last = buf + (NL % 2) * (BM * P)
        delta = tl.zeros((BM, KI), dtype=tl.float32)
        raw = tl.zeros((BM, KI), dtype=tl.float32)
        for k2 in range(P // BN):
            h2 = tl.load(last + local[:, None] * P + k2 * BN + tile[None, :])
            w2 = tl.load(w_out + (k2 * BN + tile)[:, None] * KI + cols[None, :])
            delta = tl.dot(h2, w2, delta, input_precision=PRECISION)
            if NOISE:
                wv = tl.load(w_var + (k2 * BN + tile)[:, None] * KI + cols[None, :])
                raw = tl.dot(h2, wv, raw, input_precision=PRECISION)
        delta += head_bias[None, :]
        if NOISE:
            above = _softplus(vspan[None, :] - _softplus(vmax[None, :] - raw
                                                         - var_bias[None, :]))
            std = tl.exp(voffset[None, :] + 0.5 * above)
            z = tl.load(noise + t * (R * OBS) + member * (groups * OBS)
                        + group[:, None] * OBS + cols[None, :], mask=state_cols, other=0.0)
            delta += std * z
        s = s + delta
        tl.store(traj + rows[:, None] * step + (t + 1) * OBS + cols[None, :], s,
                 mask=state_cols)
        tl.debug_barrier()  # the next step's first layer overwrites buffer 0
