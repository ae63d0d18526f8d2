"""MPCAgent: observation in, first action of the planned sequence out, every step.

It is the only place that crosses between numpy (the environment) and torch (the
planner): one transfer in, one out, per step. It also times every plan call so that
latency is reported by every run.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from dynaplan.planners.base import Planner


class MPCAgent:
    def __init__(self, planner: Planner, device: torch.device) -> None:
        self.planner = planner
        self.device = device
        self.plan_seconds: list[float] = []
        self.last_predicted_return: np.ndarray | None = None

    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs: [O] or [B, O] -> action [A] or [B, A] inside the action bounds."""
        single = obs.ndim == 1
        start = time.perf_counter()
        x = torch.as_tensor(np.atleast_2d(obs), dtype=torch.float32).to(self.device)
        plan = self.planner.plan(x)
        out = torch.cat([plan.action, plan.predicted_return[:, None]], dim=1).cpu().numpy()
        self.plan_seconds.append(time.perf_counter() - start)
        action, self.last_predicted_return = out[:, :-1], out[:, -1]
        return action[0] if single else action

    def latency_ms(self) -> tuple[float, float]:
        """Median and 99th percentile of plan-call time since the last reset, in ms."""
        if not self.plan_seconds:
            return float("nan"), float("nan")
        ms = 1e3 * np.asarray(self.plan_seconds)
        return float(np.median(ms)), float(np.percentile(ms, 99))

    def reset_timing(self) -> None:
        self.plan_seconds.clear()
