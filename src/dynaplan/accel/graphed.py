"""CUDA graph capture of whole plan calls.

On a GPU a plan call is hundreds of tiny kernels: per optimizer iteration a sampling step,
H horizon steps of a few matmuls each, a ranking and a refit. At planning sizes each kernel
runs for microseconds, so launching them one by one from Python costs more than running
them. `GraphedPlanner` records the whole call once per input signature (batch size, and
whether a warm start is given) as a CUDA graph and replays it afterwards: one launch per
plan call, with the horizon loop, the optimizer iterations and the ranking inside.

Random draws stay what they would be: the planner's and the objective's CUDA generators
are registered with every graph, so a replay draws from the generators' current state
and advances them exactly as an eager call does. Capture itself leaves the generators
where it found them. Same generator states, same plans as the plain planner (tested on a
GPU, float tolerance).

A graph reads the planning networks at fixed addresses; `ModelObjective.refresh()` (after
every fit) builds new ones, so graphs of an older objective version are dropped and the
next call captures afresh (a few eager warm-up calls and one capture, once per fit).
"""

from __future__ import annotations

from typing import Any

import torch

from dynaplan.planners.base import Planner
from dynaplan.types import Plan

_Inputs = dict[str, torch.Tensor | None]


class GraphedPlanner:
    """A planner on a CUDA device whose `plan` replays a captured CUDA graph. Every other
    attribute is the wrapped planner's."""

    def __init__(self, planner: Planner, warmup: int = 2) -> None:
        if planner.low.device.type != "cuda":
            raise ValueError("CUDA graphs need a planner on a CUDA device")
        generators = (planner.generator, *getattr(planner.objective, "generators", ()))
        if any(g.device.type != "cuda" for g in generators):
            raise ValueError("CUDA graphs need the planner's and the objective's generators "
                             "on the CUDA device")
        if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
            raise ValueError(f"torch {torch.__version__} cannot capture explicit generators "
                             "in a CUDA graph (needs torch >= 2.5)")
        self.planner, self.generators, self.warmup = planner, generators, warmup
        self.captures = 0  # graphs captured so far (each costs warm-up calls and a capture)
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, _Inputs, tuple]] = {}
        self._version: int | None = None

    def __getattr__(self, name: str) -> Any:
        if name == "planner":  # not set yet: avoid recursing through __getattr__
            raise AttributeError(name)
        return getattr(self.planner, name)

    def plan(
        self,
        obs: torch.Tensor,
        init_mean: torch.Tensor | None = None,
        init_elites: torch.Tensor | None = None,
    ) -> Plan:
        """As `Planner.plan`; the returned tensors are fresh (not the graph's buffers)."""
        version = getattr(self.planner.objective, "version", 0)
        if version != self._version:  # the networks were rebuilt: old graphs are stale
            self._graphs.clear()
            self._version = version
        inputs: _Inputs = {"obs": obs, "init_mean": init_mean, "init_elites": init_elites}
        key = tuple(None if t is None else (tuple(t.shape), t.dtype) for t in inputs.values())
        if key not in self._graphs:
            self._graphs[key] = self._capture(inputs)
        graph, static, outputs = self._graphs[key]
        for name, value in inputs.items():
            if value is not None:
                static[name].copy_(value)  # type: ignore[union-attr]
        graph.replay()
        action, actions, predicted, elites = (None if t is None else t.clone() for t in outputs)
        return Plan(action, actions, predicted, elites)  # type: ignore[arg-type]

    def _capture(self, inputs: _Inputs) -> tuple[torch.cuda.CUDAGraph, _Inputs, tuple]:
        static = {k: None if t is None else t.clone() for k, t in inputs.items()}
        states = [g.get_state() for g in self.generators]
        # warm-up on a side stream (cuBLAS/cuFFT plans, the networks' workspaces), as
        # torch.cuda.graphs documents; its draws are undone below
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.planner.plan(**static)  # type: ignore[arg-type]
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        for g in self.generators:
            graph.register_generator_state(g)
        with torch.cuda.graph(graph):
            plan = self.planner.plan(**static)  # type: ignore[arg-type]
        for g, state in zip(self.generators, states):
            g.set_state(state)
        self.captures += 1
        return graph, static, (plan.action, plan.actions, plan.predicted_return, plan.elites)
