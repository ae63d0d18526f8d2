"""MPCAgent: observation in, first action of the planned sequence out, every step.

It is the only place that crosses between numpy (the environment) and torch (the
planner): one transfer in, one out, per step. It also times every plan call so that
latency is reported by every run.

It also owns the warm start, the only state carried from one step to the next: with
`warm_start`, the previous plan's sequence [B, H, A] (and kept elites [B, K, H, A], if
the planner returns them) are shifted one step forward (`shift`) and passed to the
next `plan` call as `init_mean` (and `init_elites`). `reset()` forgets them; call it at
the start of every episode.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from numpy.typing import ArrayLike

from dynaplan.planners.base import Planner
from dynaplan.types import FILLS, Plan


def shift(sequences: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
    """sequences [..., H, A] planned at step t -> their continuation at step t + 1:
    [a_2 .. a_H, fill], with fill [A] a constant, or None to repeat a_H."""
    tail = sequences[..., -1:, :]
    if fill is not None:
        tail = fill.expand_as(tail)
    return torch.cat([sequences[..., 1:, :], tail], dim=-2)


class MPCAgent:
    """warm_start: pass the shifted previous plan to the planner (None: the planner's
    own default, `Planner.warm_start`: off for random shooting and the seed's CEM, on
    for iCEM and MPPI). fill: the new last step of a shifted plan, "center" of the
    action bounds or "repeat" of the last planned action."""

    def __init__(
        self,
        planner: Planner,
        device: torch.device,
        warm_start: bool | None = None,
        fill: str = "center",
    ) -> None:
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
        self.planner = planner
        self.device = device
        self.warm_start = planner.warm_start if warm_start is None else warm_start
        self.fill = fill
        self.plan_seconds: list[float] = []
        self.last_predicted_return: np.ndarray | None = None
        self._previous: Plan | None = None  # last plan, kept only when warm starting
        self._ids: np.ndarray | None = None  # the env ids of its rows

    def reset(self) -> None:
        """Forget the previous plan: the next `act` plans cold. Call at episode start."""
        self._previous, self._ids = None, None

    def act(self, obs: ArrayLike, ids: np.ndarray | None = None) -> np.ndarray:
        """obs: [O] or [B, O] -> action [A] or [B, A] inside the action bounds.

        ids: [B] optional stable identifiers of the environments the rows come from
        (e.g. indices into a list of envs). When some episodes of a batch finished and
        only the active rows are passed, ids tell which previous plan continues which
        row. Without ids, a change of batch size drops the warm start."""
        obs = np.asarray(obs)  # a list or a tensor on the CPU works too
        single = obs.ndim == 1
        start = time.perf_counter()
        x = torch.as_tensor(np.atleast_2d(obs), dtype=torch.float32).to(self.device)
        init_mean, init_elites = self._warm_start_inputs(x.shape[0], ids)
        plan = self.planner.plan(x, init_mean=init_mean, init_elites=init_elites)
        out = torch.cat([plan.action, plan.predicted_return[:, None]], dim=1).cpu().numpy()
        self.plan_seconds.append(time.perf_counter() - start)
        if self.warm_start:
            self._previous = plan
            self._ids = None if ids is None else np.asarray(ids).copy()
        action, self.last_predicted_return = out[:, :-1], out[:, -1]
        return action[0] if single else action

    def _warm_start_inputs(
        self, batch: int, ids: np.ndarray | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Shifted previous plan (and elites) for these rows, or (None, None)."""
        previous = self._previous
        if previous is None:
            return None, None
        rows = self._previous_rows(batch, ids)
        if rows is None:
            return None, None
        fill = self.planner.center if self.fill == "center" else None
        actions, elites = previous.actions, previous.elites
        if not isinstance(rows, slice):
            index = torch.as_tensor(rows, device=actions.device)
            actions = actions[index]
            elites = None if elites is None else elites[index]
        return shift(actions, fill), None if elites is None else shift(elites, fill)

    def _previous_rows(self, batch: int, ids: np.ndarray | None) -> slice | np.ndarray | None:
        """Which rows of the previous plan continue these rows: all (a slice), an index
        array, or None when some row has no previous plan."""
        previous_batch = self._previous.actions.shape[0]  # type: ignore[union-attr]
        if ids is None or self._ids is None:
            return slice(None) if batch == previous_batch else None
        ids = np.asarray(ids)
        if ids.shape == self._ids.shape and (ids == self._ids).all():
            return slice(None)
        match = ids[:, None] == self._ids[None, :]  # [B, B_previous]
        if not match.any(axis=1).all():
            return None
        return match.argmax(axis=1)

    def latency_ms(self) -> tuple[float, float]:
        """Median and 99th percentile of plan-call time since the last reset_timing(), in ms."""
        if not self.plan_seconds:
            return float("nan"), float("nan")
        ms = 1e3 * np.asarray(self.plan_seconds)
        return float(np.median(ms)), float(np.percentile(ms, 99))

    def reset_timing(self) -> None:
        self.plan_seconds.clear()
