"""Everything that makes dynaplan faster and nothing that defines it.

The definitions are plain torch (models/, objective.py); each accelerator here computes
the same, faster, behind one of four seams:

- a `Rollout` of the objective's horizon loop (`select_rollout`): "torch" (the fused
  torch path: normalizers and BatchNorm folded into the weights, buffers reused, the
  seed's two networks as one batched matmul; fused.py, fused_ensemble.py, rollouts.py),
  "native" (one C kernel call a plan, the CPU; native_*.py, native_kernel.c) and "triton"
  (one GPU kernel a plan; triton_*.py);
- a `FitStep` of `models.fit` (`select_fit_step`, fit_steps.py): the seed network's whole
  step in native code, autograd through a faster forward pass, or the Gaussian
  ensemble's step with its backward pass written out (ensemble_fit.py);
- the `Optimizer` of a fit part (`select_optimizer`): Adam as torch's fused kernel,
  without torch.optim (fused_adam.py);
- around the planner and the process: CUDA graphs (graphed.py), TF32 matmuls
  (precision.py), glibc's allocator thresholds (allocator.py).

A model type no accelerator knows runs on the reference path and never fails for it.
`why_not(kind, device)` is the one answer to "can this run here?", which configuration,
build, eval and bench all ask. This package is imported lazily: importing it costs no
compiler run and no triton import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from dynaplan.types import FitStep, Learnable, Optimizer, RewardFn, Rollout, TerminationFn


@dataclass(frozen=True)
class Accelerator:
    name: str
    what: str
    """What it is, as refusals name it."""
    role: str
    """"rollout", "fit", "planner" (wraps a planner) or "precision"."""
    devices: tuple[str, ...]
    """The device types it runs on."""
    check: Callable[[], str | None] | None = None
    """What this process may lack (a package, a compiler): a one-line reason, or None."""


def _native() -> str | None:
    from dynaplan.accel import native_build

    return native_build.unavailable()


def _triton() -> str | None:
    from dynaplan.accel import triton_rollout

    return triton_rollout.unavailable()


def _graphs() -> str | None:
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return (f"torch {torch.__version__} cannot capture explicit generators in a CUDA "
                "graph (needs torch >= 2.5)")
    return None


ACCELERATORS: dict[str, Accelerator] = {
    "torch": Accelerator("torch", "the fused torch rollout", "rollout", ("cpu", "cuda")),
    "native": Accelerator("native", "the native rollout kernel", "rollout", ("cpu",), _native),
    "triton": Accelerator("triton", "the Triton rollout kernel", "rollout", ("cuda",),
                          _triton),
    "native_mse": Accelerator("native_mse", "the native fitting step", "fit", ("cpu",),
                              _native),
    "fast_forward": Accelerator("fast_forward", "the fast-forward fitting step", "fit",
                                ("cpu", "cuda")),
    "ensemble_nll": Accelerator("ensemble_nll", "the Gaussian ensemble's written-out fitting step",
                                "fit", ("cpu", "cuda")),
    "fused_adam": Accelerator("fused_adam", "torch's fused Adam kernel", "optimizer",
                              ("cpu", "cuda")),
    "cuda_graph": Accelerator("cuda_graph", "CUDA graph capture", "planner", ("cuda",),
                              _graphs),
    "tf32": Accelerator("tf32", "TF32 matmuls", "precision", ("cuda",)),
}

ROLLOUT_KERNELS = ("auto", "reference", *(k for k, a in ACCELERATORS.items()
                                          if a.role == "rollout"))
"""How a plan call's rollouts run: "reference" (the plain torch definition,
objective.StepRollout), an accelerator's rollout, or "auto": "native" where it can run
the model, else "torch"."""


def why_not(kind: str, device: torch.device | str, runtime: bool = True) -> str | None:
    """Why accelerator `kind` cannot run on `device` (a torch.device, or a configured
    "cpu", "cuda" or "auto", which leaves the device type open), as words that follow its
    option ("needs a CUDA device", "runs on the CPU only"), or what this process lacks
    (with `runtime`: a full one-line reason); None when it can run."""
    if kind in ("auto", "reference"):
        return None
    accelerator = ACCELERATORS.get(kind)
    if accelerator is None:
        return f"is not an accelerator (choose from {', '.join(ACCELERATORS)})"
    device_type = device if isinstance(device, str) else device.type
    if device_type != "auto" and device_type not in accelerator.devices:
        return "needs a CUDA device" if accelerator.devices == ("cuda",) else \
            "runs on the CPU only"
    if runtime and accelerator.check is not None:
        return accelerator.check()
    return None


def refusal(option: str, kind: str, device: torch.device, where: str = "this run") -> str | None:
    """The one-line refusal of `option` (its flag and value, "--rollout-kernel native")
    for a process that runs on `device`, or None: "<option> needs a CUDA device, and
    <where> plans on cpu" or "<option>: <what this process lacks>"."""
    reason = why_not(kind, device, runtime=False)
    if reason is not None:
        return f"{option} {reason}, and {where} plans on {device}"
    reason = why_not(kind, device)
    return None if reason is None else f"{option}: {reason}"


def select_rollout(kernel: str, dynamics: Any, reward: RewardFn,
                   termination: TerminationFn | None, **options: Any) -> Rollout:
    """The rollout `kernel` (ROLLOUT_KERNELS) of dynamics and reward (rollouts.py)."""
    from dynaplan.accel.rollouts import select_rollout as select

    return select(kernel, dynamics, reward, termination, **options)


def select_fit_step(model: Learnable, x: torch.Tensor) -> FitStep:
    """The fastest FitStep for `model` (fit_steps.py)."""
    from dynaplan.accel.fit_steps import select_fit_step as select

    return select(model, x)


_FUSED_ADAM: dict[str, str | None] = {}
"""Per device type: why torch has no fused Adam kernel there (None: it has)."""


def select_optimizer(params: Iterable[torch.nn.Parameter], lr: float,
                     weight_decay: float = 0.0) -> Optimizer:
    """Adam for a fit part: FusedAdam (fused_adam.py) where this torch has the fused
    kernel for the parameters' device, else the reference torch.optim.Adam. Same update."""
    from dynaplan.accel.fused_adam import FusedAdam, fused_adam_unavailable

    params = list(params)
    device = params[0].device if params else torch.device("cpu")
    if device.type not in _FUSED_ADAM:
        _FUSED_ADAM[device.type] = fused_adam_unavailable(device)
    if _FUSED_ADAM[device.type] is None:
        return FusedAdam(params, lr, weight_decay)
    from dynaplan.models.fitting import adam

    return adam(params, lr, weight_decay)
