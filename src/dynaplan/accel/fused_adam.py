"""Adam as torch's fused kernel, called without torch.optim.

`torch.optim.Adam(params, fused=True)` updates every parameter in one pass of one aten
op (`torch._fused_adam_`); the default CPU implementation is a loop of about ten
elementwise ops per parameter tensor (244 against 45 microseconds a step for the `pets`
preset's ensemble on one thread of this project's CPU, benchmarks/ensemble_adam_ab.py).
Both, through torch.optim, also import torch's compiler stack (`torch._dynamo`, about one
second of a fresh process) the first time an optimizer is made, because its methods are
wrapped to be skipped by torch.compile. `FusedAdam` calls the same op with the same
arguments as torch.optim's fused path, so its updates are torch's fused Adam's to the
bit, and it reads and writes torch.optim.Adam's `state_dict` format, so checkpoints move
freely between the two.

`select_optimizer` (accel/__init__.py) chooses it where torch has the fused kernel for
the parameters' device; the reference is `torch.optim.Adam` (models/fitting.py's `adam`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def fused_adam_unavailable(device: torch.device) -> str | None:
    """Why this torch has no fused Adam kernel for `device` (one line), or None."""
    if not hasattr(torch, "_fused_adam_"):
        return f"torch {torch.__version__} has no fused Adam kernel"
    p = torch.zeros(1, device=device)
    try:
        torch._fused_adam_([p], [torch.zeros_like(p)], [torch.zeros_like(p)],
                           [torch.zeros_like(p)], [], [torch.ones((), device=device)],
                           lr=0.0, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                           amsgrad=False, maximize=False)
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        return f"torch {torch.__version__} has no fused Adam kernel on {device.type}: {first}"
    return None


class FusedAdam:
    """Adam with L2 weight decay (torch.optim.Adam's defaults otherwise: betas 0.9 and
    0.999, eps 1e-8, no amsgrad), one param group; `step` updates the parameters that
    have a gradient, as torch.optim does, and creates their state on first use."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float,
                 weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        group = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                 "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                 "differentiable": False, "fused": True, "decoupled_weight_decay": False}
        self.param_groups: list[dict[str, Any]] = [group]  # torch.optim's keys
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def _state(self, k: int, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if k not in self.state:  # as torch.optim.Adam's _init_group for fused=True
            self.state[k] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                             "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                             "exp_avg_sq": torch.zeros_like(p,
                                                            memory_format=torch.preserve_format)}
        return self.state[k]

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        by_device: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for k, p in enumerate(self.params):
            if p.grad is not None:
                by_device.setdefault((p.device, p.dtype), []).append(k)
        beta1, beta2 = (float(b) for b in group["betas"])
        for ks in by_device.values():
            states = [self._state(k, self.params[k]) for k in ks]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_([self.params[k] for k in ks],
                               [self.params[k].grad for k in ks],  # type: ignore[misc]
                               [s["exp_avg"] for s in states],
                               [s["exp_avg_sq"] for s in states], [], steps,
                               amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                               weight_decay=group["weight_decay"], eps=group["eps"],
                               maximize=False, grad_scale=None, found_inf=None)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Adam's format: per-parameter state by index, one param group."""
        return {"state": {k: dict(s) for k, s in self.state.items()},
                "param_groups": [{**self.param_groups[0],
                                  "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A state_dict of this class or of torch.optim.Adam over the same parameters."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             "or parameters")
        index = {pid: k for k, pid in enumerate(groups[0]["params"])}
        state: dict[int, dict[str, torch.Tensor]] = {}
        for pid, saved in state_dict["state"].items():
            k = index[pid]
            p = self.params[k]
            if saved["exp_avg"].shape != p.shape:
                raise ValueError(f"loaded state of parameter {k} has shape "
                                 f"{tuple(saved['exp_avg'].shape)}, the parameter "
                                 f"{tuple(p.shape)}")
            step = torch.as_tensor(saved["step"], dtype=torch.float32, device=p.device)
            state[k] = {"step": step.reshape(()).clone(),
                        "exp_avg": saved["exp_avg"].to(p.device, p.dtype).clone(),
                        "exp_avg_sq": saved["exp_avg_sq"].to(p.device, p.dtype).clone()}
        self.state = state
        keep = ("lr", "betas", "eps", "weight_decay")
        self.param_groups[0].update({key: groups[0][key] for key in keep if key in groups[0]})
