"""The one place where models meet planners: predicted returns of action sequences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from dynaplan.models.fused import FusedMLPs
from dynaplan.models.fused_ensemble import FusedEnsemble
from dynaplan.models.native_rollout import NativeRollout
from dynaplan.models.native_rollout import unavailable as native_unavailable
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.models.triton_rollout import TritonRollout
from dynaplan.models.triton_rollout import unavailable as triton_unavailable
from dynaplan.models.world import DynamicsModel, RewardModel
from dynaplan.precision import tf32_matmuls

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TerminationFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Objective(Protocol):
    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """obs: [B, O]; actions: [B, N, H, A] -> predicted returns [B, N]."""
        ...


KERNELS = ("auto", "torch", "triton", "native")
"""How a plan call's rollouts run: torch ops step by step, or one kernel a call (Triton on
a GPU, models/triton_rollout.py; C on the CPU, models/native_rollout.py). "auto" takes the
native kernel where it can run (resolve_kernel), else torch."""


def kernel_unavailable(kernel: str) -> str | None:
    """Why `kernel` cannot run in this process at all (one line: no triton package; no C
    compiler or CPU support for the native kernel), or None."""
    check = {"triton": triton_unavailable, "native": native_unavailable}.get(kernel)
    return None if check is None else check()


def kernel_refusal(kernel: str, dynamics, fused: bool = True,
                   compile: bool = False) -> str | None:
    """Why `kernel` cannot plan through `dynamics` (one line), or None."""
    if kernel == "torch":
        return None
    name = {"triton": "the Triton rollout kernel", "native": "the native rollout kernel"}[kernel]
    if isinstance(dynamics, EnsembleDynamics) and dynamics.propagation != "tsinf":
        return f"{name} propagates an ensemble by tsinf only, not {dynamics.propagation}"
    if not fused or compile:
        return f"{name} replaces the fused path: not with fused off or compile"
    return None


def resolve_kernel(kernel: str, dynamics, fused: bool = True, compile: bool = False) -> str:
    """`kernel`, with "auto" made "native" for float32 models on the CPU where the native
    kernel builds and runs them (a dynamics MLP or a TS-inf ensemble, the fused path), else
    "torch"."""
    if kernel != "auto":
        return kernel
    if kernel_refusal("native", dynamics, fused, compile) is not None:
        return "torch"
    module = dynamics.ensemble if isinstance(dynamics, EnsembleDynamics) else dynamics
    weight = next(module.parameters())
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return "torch"
    return "torch" if kernel_unavailable("native") is not None else "native"


class ModelObjective:
    """Sum of rewards along the trajectories the dynamics model predicts.

    s_0 = obs; s_{t+1} = dynamics(s_t, a_t); r_t = reward(s_t, a_t, s_{t+1}), zero after a
    predicted termination; return = sum_t r_t (undiscounted, as in the seed), averaged
    over `particles` rollouts per sequence (PETS). All B x N x P rollouts run as one batch
    of rows (particle index fastest); the only Python loop is over the horizon.

    `dynamics` is a DynamicsModel (deterministic; P = 1) or an EnsembleDynamics (its own
    propagation and particle count). `reward` is the learned RewardModel or a known reward
    function; `termination` a known termination function or None. With `fused` (default)
    MLP models and ensembles run in their folded planning forms (models/fused.py,
    models/fused_ensemble.py), which `refresh()` rebuilds: call it after every fit.
    `fused=False` runs the modules as they are, the reference the fused path is tested
    against. `compile` puts the fused networks (and, unless dynamics and reward are one
    network pair, the whole dynamics step, for an ensemble through its module) through
    `torch.compile`, which fuses the small elementwise kernels; first calls are slow
    while it compiles. `tf32` runs the rollouts' matmuls on a GPU's TF32 tensor cores
    (precision.py). `kernel` (KERNELS) runs each call's rollouts as torch ops or as one
    kernel; `self.kernel` is the one chosen ("auto" resolved).
    """

    def __init__(
        self,
        dynamics: DynamicsModel | EnsembleDynamics,
        reward: RewardModel | RewardFn,
        termination: TerminationFn | None = None,
        fused: bool = True,
        compile: bool = False,
        tf32: bool = False,
        kernel: str = "auto",
        kernel_options: dict | None = None,
    ) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        kernel = resolve_kernel(kernel, dynamics, fused, compile)
        reason = kernel_unavailable(kernel) or kernel_refusal(kernel, dynamics, fused, compile)
        if reason is not None:
            raise ValueError(reason)
        self.dynamics, self.reward, self.termination = dynamics, reward, termination
        self.fused, self.compile, self.tf32, self.kernel = fused, compile, tf32, kernel
        self.kernel_options = dict(kernel_options or {})
        self.particles = dynamics.particles if isinstance(dynamics, EnsembleDynamics) else 1
        self._dyn_net: FusedMLPs | None = None
        self._rew_net: FusedMLPs | None = None
        self._ens_net: FusedEnsemble | None = None
        self._triton: TritonRollout | None = None
        self._native: NativeRollout | None = None
        self._joint = (kernel == "torch" and isinstance(dynamics, DynamicsModel)
                       and isinstance(reward, RewardModel))
        self.version = 0
        """Counts `refresh()` calls: a captured CUDA graph of an older version is stale."""
        self._built = False
        self._step = self._fused_step
        self._next = self._fused_next

    @property
    def generators(self) -> tuple[torch.Generator, ...]:
        """The generators a call draws from (the ensemble's particle draws), if any."""
        gen = getattr(self.dynamics, "generator", None)
        return () if gen is None else (gen,)

    def refresh(self) -> None:
        """Snapshot the models' current weights into the fused planning networks."""
        self.version += 1
        self._built = True
        if not self.fused:
            return
        if self._joint:  # dynamics and reward share their input: one network pair
            net = FusedMLPs([self.dynamics, self.reward])  # type: ignore[list-item]
            self._dyn_net = torch.compile(net) if self.compile else net
            return
        if isinstance(self.reward, RewardModel):
            self._rew_net = FusedMLPs([self.reward])
        if isinstance(self.dynamics, DynamicsModel):
            self._dyn_net = FusedMLPs([self.dynamics])
            obs_dim = self.dynamics.output_norm.mean.numel()
            if self.kernel == "triton":
                self._triton = TritonRollout(self._dyn_net, obs_dim, tf32=self.tf32,
                                             **self.kernel_options)
            if self.kernel == "native":  # a learned reward runs inside the kernel
                self._native = NativeRollout(self._dyn_net, obs_dim, self._rew_net,
                                             **self.kernel_options)
        elif not self.compile:  # compiled, the ensemble module itself goes through dynamo
            ens = self.dynamics.ensemble
            one_launch = self.kernel in ("triton", "native")  # each member's rows alone
            self._ens_net = FusedEnsemble(ens, split=1 if one_launch else None)
            if self.kernel == "triton":
                self._triton = TritonRollout(self._ens_net, ens.out_dim, tf32=self.tf32,
                                             sample=self.dynamics.sample,
                                             **self.kernel_options)
            if self.kernel == "native":
                self._native = NativeRollout(self._ens_net, ens.out_dim, self._rew_net,
                                             sample=self.dynamics.sample,
                                             **self.kernel_options)
        self._step = torch.compile(self._fused_step) if self.compile else self._fused_step
        self._next = torch.compile(self._fused_next) if self.compile else self._fused_next

    def step(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s [R, O], a [R, A]) -> (s' [R, O], r [R])."""
        if not self.fused:
            next_state = self.dynamics(state, action)
            return next_state, self.reward(state, action, next_state)
        if not self._built:
            self.refresh()
        return self._step(state, action)

    def _fused_step(
        self, state: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([state, action], dim=-1)
        if self._joint:
            out = self._dyn_net(x)  # type: ignore[misc]
            return state + out[0], out[1, :, 0]
        next_state = self._fused_next(state, action)
        if self._rew_net is not None:
            return next_state, self._rew_net(x)[0, :, 0]
        return next_state, self.reward(state, action, next_state)

    def next_state(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(s [R, O], a [R, A]) -> s' [R, O], the dynamics alone."""
        if not self.fused:
            return self.dynamics(state, action)
        if not self._built:
            self.refresh()
        return self._next(state, action)

    def _fused_next(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        net = self._dyn_net
        if net is None:  # an ensemble: its own propagation, through its fused form
            return self.dynamics(state, action, fused=self._ens_net)  # type: ignore[call-arg]
        h = net.hidden(torch.cat([state, action], dim=-1), reuse=not self.compile)
        w, b = net.w_out_t[0].t(), net.b_out[0, 0]
        if net.epilogue:  # h W + b in one cuBLASLt kernel, then + s
            return torch.addmm(b, h[0], w).add_(state)
        # the output head applied to the state itself: s + h W + b in two kernels
        return torch.addmm(state, h[0], w).add_(b)

    @torch.inference_mode()
    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.tf32:
            with tf32_matmuls():
                return self._returns(obs, actions)
        return self._returns(obs, actions)

    def _returns(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        B, N, H, A = actions.shape
        P = self.particles
        rows = B * N * P
        if self.fused and self._joint and self.termination is None and not self.compile:
            return self._rollout_joint(obs, actions.reshape(rows, H, A)).view(B, N)
        state = obs[:, None, :].expand(B, N * P, obs.shape[-1]).reshape(rows, -1)
        if P > 1:
            actions = actions[:, :, None].expand(B, N, P, H, A)
        flat = actions.reshape(rows, H, A)
        return self._rollout(state, flat).view(B, N, P).mean(dim=-1)

    def _rollout(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """state [R, O], actions [R, H, A] -> returns [R]: the horizon loop runs the
        dynamics; a reward function (known or shaped) and the termination are then
        evaluated once over all R x H transitions, since they are rowwise: one call of
        about 10 small kernels instead of one per step (setting c of `dynaplan bench`,
        30 steps). A learned reward model still runs inside the loop, where its
        activations are R rows, not R x H, except after the Triton kernel, which leaves
        no loop to run it in (the native kernel runs it itself)."""
        if not self._built:
            self.refresh()
        rows, horizon, _ = actions.shape
        learned = isinstance(self.reward, RewardModel)
        per_step = learned and self._triton is None and self._native is None
        states, rewards = [state], []
        r: torch.Tensor | None = None  # [R, H]: the native kernel computes a learned reward
        if self._native is not None or self._triton is not None:
            noise = None
            if isinstance(self.dynamics, EnsembleDynamics):  # the draws of the torch path
                noise = self.dynamics.draw_noise(rows, horizon, state.device)
            if self._native is not None:
                traj, r = self._native(state, actions, noise)
                if r is not None and self.termination is None:
                    return r.sum(dim=1)
            else:
                traj = self._triton(state, actions, noise)
        else:
            for a_t in actions.unbind(1):
                if per_step:
                    state, reward = self.step(state, a_t)
                    rewards.append(reward)
                else:
                    state = self.next_state(state, a_t)
                states.append(state)
            if per_step and self.termination is None:
                return torch.stack(rewards, dim=1).sum(dim=1)
            traj = torch.stack(states, dim=1)  # [R, H + 1, O]
        before = traj[:, :-1].reshape(rows * horizon, -1)
        after = traj[:, 1:].reshape(rows * horizon, -1)
        acts = actions.reshape(rows * horizon, -1)
        if per_step:
            r = torch.stack(rewards, dim=1)
        elif r is None and learned and self._rew_net is not None:  # after the Triton kernel
            r = self._rew_net(torch.cat([before, acts], dim=-1))[0, :, 0].view(rows, horizon)
        elif r is None:
            r = self.reward(before, acts, after).view(rows, horizon)  # type: ignore[operator]
        if self.termination is not None:  # no reward after a predicted termination
            done = self.termination(before, acts, after).view(rows, horizon)
            alive = done.cumsum(dim=1) == done.long()  # none before step t
            r = torch.where(alive, r, torch.zeros_like(r))
        return r.sum(dim=1)

    def _rollout_joint(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The seed's case (learned dynamics + learned reward, fused, one particle), with
        every op that can be hoisted out of the horizon loop hoisted: obs [B, O], actions
        [R = B * N, H, A] -> returns [R].

        Per step: the action is copied into the shared input [s, a], the hidden layers
        run as batched matmuls into reused buffers, and the two output heads are applied
        in place: the dynamics head adds its state change to the input's state part
        (addmm_, then its bias), the reward head adds the reward to the running total
        (addmv_; its bias is added once, H times): 8 calls a step, no views made inside
        the loop. The hidden 512 x 256 matmul is then most of a step (torch.profiler,
        setting a of `dynaplan bench`: 0.38 of 0.50 ms; the plain loop it replaced made
        14 calls and about 10 views a step and took 0.61 ms).
        """
        if not self._built:
            self.refresh()
        net = self._dyn_net
        assert isinstance(net, FusedMLPs)
        rows, horizon, act_dim = actions.shape
        obs_dim = obs.shape[-1]
        x = obs.new_empty(rows, obs_dim + act_dim)  # the model input [s, a]
        x_state, x_action = x[:, :obs_dim], x[:, obs_dim:]
        x_state.view(obs.shape[0], -1, obs_dim).copy_(obs[:, None])
        x_wide = x.expand(net.k, rows, x.shape[1])
        w_state = net.w_out_t[0, :obs_dim].t()  # [h, O] view of the dynamics head
        b_state = net.b_out[0, 0, :obs_dim]
        w_reward = net.w_out_t[1, 0]  # [h] reward head
        total = x.new_zeros(rows).add_(net.b_out[1, 0, 0], alpha=horizon)
        heads: tuple[torch.Tensor, ...] = ()
        for a_t in actions.unbind(1):
            x_action.copy_(a_t)
            h = net.hidden(x_wide, reuse=True)  # the same buffer [2, R, h] every step
            if not heads:
                heads = h.unbind(0)
            x_state.addmm_(heads[0], w_state).add_(b_state)  # s_{t+1} = s_t + delta
            total.addmv_(heads[1], w_reward)
        return total
