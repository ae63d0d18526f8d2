"""Choosing a rollout: the one function that turns a rollout kernel's name into the
objective's `Rollout`, and the adapters that run the native and Triton kernels as one.

- "reference": objective.StepRollout, the plain definition;
- "torch": torch_rollout.FusedTorchRollout for the models it knows, else the reference;
- "native": one C kernel call a plan (native_rollout.py), the CPU;
- "triton": one GPU kernel a plan (triton_rollout.py);
- "auto": "native" where it runs the model here (float32 weights on the CPU, the library
  builds, no compile), else "torch".

The kernels run a dynamics MLP or a Gaussian ensemble propagated by TS-inf, and a learned
reward model (inside the native kernel; after the Triton kernel, over all steps at once);
another model is refused in one line. `tf32` runs the rollout's matmuls on a GPU's TF32
tensor cores (precision.py).
"""

from __future__ import annotations

from typing import Any

import torch

from dynaplan.accel import ACCELERATORS, why_not
from dynaplan.accel.fused import FusedMLPs
from dynaplan.accel.fused_ensemble import FusedEnsemble
from dynaplan.accel.precision import tf32_matmuls
from dynaplan.accel.torch_rollout import FusedTorchRollout
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.models.world import DynamicsModel, RewardModel
from dynaplan.objective import StepRollout
from dynaplan.types import RewardFn, Rollout, TerminationFn, Trajectory


def kernel_refusal(kernel: str, dynamics: Any, compile: bool = False) -> str | None:
    """Why rollout `kernel` cannot run `dynamics` (one line), or None."""
    what = ACCELERATORS[kernel].what
    if compile:
        return f"{what} replaces the fused torch path: not with compile"
    if isinstance(dynamics, EnsembleDynamics):
        if not isinstance(dynamics.ensemble, GaussianEnsemble):
            return f"{what} does not run a {type(dynamics.ensemble).__name__}"
        if dynamics.propagation != "tsinf":
            return f"{what} propagates an ensemble by tsinf only, not {dynamics.propagation}"
        return None
    if isinstance(dynamics, DynamicsModel) and dynamics.net.hidden:
        return None
    return f"{what} does not run a {type(dynamics).__name__} dynamics model"


def _fused_torch_knows(dynamics: Any) -> bool:
    if isinstance(dynamics, EnsembleDynamics):
        return isinstance(dynamics.ensemble, GaussianEnsemble)
    return isinstance(dynamics, DynamicsModel) and bool(dynamics.net.hidden)


def _weight(dynamics: Any) -> torch.Tensor:
    """A parameter of the dynamics model (known to kernel_refusal) that tells its device."""
    module = dynamics.ensemble if isinstance(dynamics, EnsembleDynamics) else dynamics
    return next(module.parameters())


def _auto(dynamics: Any, compile: bool) -> str:
    if kernel_refusal("native", dynamics, compile) is not None:
        return "torch"
    weight = _weight(dynamics)
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return "torch"
    return "torch" if why_not("native", weight.device) is not None else "native"


def select_rollout(kernel: str, dynamics: Any, reward: RewardFn,
                   termination: TerminationFn | None, compile: bool = False,
                   tf32: bool = False, **kernel_options: Any) -> Rollout:
    """The Rollout `kernel` runs for these models (module docstring); a kernel that cannot
    run them here is a one-line ValueError. `kernel_options`: the kernel's tuning knobs
    (native: threads; triton: block, block_m, num_warps)."""
    if kernel == "auto":
        kernel = _auto(dynamics, compile)
    rollout: Rollout
    if kernel == "reference":
        rollout = StepRollout(dynamics)
    elif kernel == "torch":
        if _fused_torch_knows(dynamics):
            rollout = FusedTorchRollout(dynamics, reward, termination is not None, compile)
        else:
            rollout = StepRollout(dynamics)
    elif kernel in ("native", "triton"):  # the kernel itself refuses tensors it cannot run
        check = ACCELERATORS[kernel].check
        reason = kernel_refusal(kernel, dynamics, compile) or (check and check())
        if reason:
            raise ValueError(reason)
        adapter = NativeKernelRollout if kernel == "native" else TritonKernelRollout
        rollout = adapter(dynamics, reward, tf32=tf32, **kernel_options)
    else:
        raise ValueError(f"unknown rollout kernel {kernel!r}")
    return TF32Rollout(rollout) if tf32 else rollout


class _KernelRollout:
    """What both kernel adapters share: the fused forms they start from, rebuilt by
    `refresh()`, and the ensemble's noise, drawn before the call with the same generator
    calls in the same order as the torch path's steps."""

    name = ""

    def __init__(self, dynamics: DynamicsModel | EnsembleDynamics, reward: RewardFn,
                 tf32: bool = False, **options: Any) -> None:
        self.dynamics, self.reward, self.tf32, self.options = dynamics, reward, tf32, options
        self.learned = isinstance(reward, RewardModel)
        self._kernel: Any = None
        self._rew_net: FusedMLPs | None = None

    def refresh(self) -> None:
        self._rew_net = FusedMLPs([self.reward]) if self.learned else None  # type: ignore[list-item]
        if isinstance(self.dynamics, DynamicsModel):
            net: FusedMLPs | FusedEnsemble = FusedMLPs([self.dynamics])
            self._kernel = self.build(net, self.dynamics.output_norm.mean.numel(), False)
        else:  # each member's rows alone, as the kernels take them
            ens = self.dynamics.ensemble
            self._kernel = self.build(FusedEnsemble(ens, split=1), ens.out_dim,
                                      self.dynamics.sample)

    def build(self, net: FusedMLPs | FusedEnsemble, obs_dim: int, sample: bool) -> Any:
        raise NotImplementedError

    def noise(self, rows: int, horizon: int, device: torch.device) -> torch.Tensor | None:
        if isinstance(self.dynamics, EnsembleDynamics):
            return self.dynamics.draw_noise(rows, horizon, device)
        return None


class NativeKernelRollout(_KernelRollout):
    """The native kernel (native_rollout.py): states and, for a learned reward, its
    rewards, in one call."""

    name = "native"

    def build(self, net: FusedMLPs | FusedEnsemble, obs_dim: int, sample: bool) -> Any:
        from dynaplan.accel.native_rollout import NativeRollout

        return NativeRollout(net, obs_dim, self._rew_net, sample=sample, **self.options)

    def __call__(self, state: torch.Tensor, actions: torch.Tensor) -> Trajectory:
        if self._kernel is None:
            self.refresh()
        rows, horizon, _ = actions.shape
        traj, rewards = self._kernel(state, actions, self.noise(rows, horizon, state.device))
        return Trajectory(states=traj, rewards=rewards)


class TritonKernelRollout(_KernelRollout):
    """The Triton kernel (triton_rollout.py): the states in one launch; a learned reward
    then runs once over all R x H transitions (no loop is left to run it in)."""

    name = "triton"

    def build(self, net: FusedMLPs | FusedEnsemble, obs_dim: int, sample: bool) -> Any:
        from dynaplan.accel.triton_rollout import TritonRollout

        return TritonRollout(net, obs_dim, tf32=self.tf32, sample=sample, **self.options)

    def __call__(self, state: torch.Tensor, actions: torch.Tensor) -> Trajectory:
        if self._kernel is None:
            self.refresh()
        rows, horizon, _ = actions.shape
        traj = self._kernel(state, actions, self.noise(rows, horizon, state.device))
        rewards = None
        if self._rew_net is not None:
            before = traj[:, :-1].reshape(rows * horizon, -1)
            acts = actions.reshape(rows * horizon, -1)
            out = self._rew_net(torch.cat([before, acts], dim=-1))
            rewards = out[0, :, 0].view(rows, horizon)
        return Trajectory(states=traj, rewards=rewards)


class TF32Rollout:
    """Another rollout with its float32 matmuls on TF32 tensor cores (a GPU; precision.py),
    the process's setting restored after each call."""

    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout
        self.name = rollout.name

    def __call__(self, state: torch.Tensor, actions: torch.Tensor) -> Trajectory:
        with tf32_matmuls():
            return self.rollout(state, actions)

    def refresh(self) -> None:
        self.rollout.refresh()
