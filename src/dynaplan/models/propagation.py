"""Planning through a probabilistic ensemble: particles and their member assignment.

Rows are laid out with the particle index fastest: row r = (sequence g, particle p),
r = g * P + p. Propagation modes (Chua et al. 2018, sec. 5):

- "expectation": every row goes through every kept member; the next state is the mean
  of the members' means (deterministic, P = 1 is enough).
- "ts1": trajectory sampling where each particle re-draws its member at every step
  (a fresh balanced random assignment of rows to members per step).
- "tsinf": each particle keeps its member for the whole horizon: member = p mod E.

With `sample`, the next state is drawn from the member's Gaussian; otherwise its mean.
TS modes need P to be a multiple of the number of kept members, so each member gets an
equal share of rows and all members run as one batched matmul.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dynaplan.types import PROPAGATIONS

Predict = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""Raw inputs [E', M, I] of the kept members -> mean and std of the state change
[E', M, O], raw units (an ensemble's `predict`, or a faster form of it)."""


class EnsembleDynamics:
    """(state [R, O], action [R, A]) -> next_state [R, O] with R = sequences x particles.

    `ensemble`: the members (a GaussianEnsemble, or any module with `members`, `elites`,
    `out_dim` and `predict`); `sample`: draw the next state from the member's Gaussian
    (else its mean; an ensemble without variances must not sample)."""

    def __init__(
        self,
        ensemble: Any,
        propagation: str = "ts1",
        particles: int = 20,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        if propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}")
        members = int(ensemble.elites.numel())
        if propagation != "expectation" and particles % members:
            raise ValueError(f"particles ({particles}) must be a multiple of the kept "
                             f"ensemble members ({members}) for {propagation}")
        self.ensemble, self.propagation, self.particles = ensemble, propagation, particles
        self.sample = sample and propagation != "expectation"
        self.generator = generator

    def member_of_rows(self, rows: int) -> torch.Tensor:
        """The member index (into the kept members) each row uses this step [R]; for
        ts1 this draws a new assignment."""
        member = torch.empty(rows, dtype=torch.long, device=self.ensemble.elites.device)
        member[self._grouping(rows)] = torch.arange(
            int(self.ensemble.elites.numel()), device=member.device)[:, None]
        return member

    def _grouping(self, rows: int) -> torch.Tensor:
        """Row indices per kept member [E', R / E']: row r serves member e when it appears
        in line e. tsinf: member = particle mod E' = r mod E' (P is a multiple of E');
        ts1: a fresh random balanced assignment."""
        e = int(self.ensemble.elites.numel())
        device = self.ensemble.elites.device
        if self.propagation == "tsinf":
            return torch.arange(rows, device=device).view(rows // e, e).t()
        perm = torch.randperm(rows, generator=self.generator, device=self._draw_device(device))
        return perm.to(device).view(rows // e, e).t()

    def draw_noise(self, rows: int, horizon: int, device: torch.device) -> torch.Tensor | None:
        """The standard normal draws a TS-inf rollout of `rows` rows makes over `horizon`
        steps, [H, E', R / E', O] on `device`: the same generator calls in the same order
        as `horizon` calls of this object (for a rollout that runs all steps at once, the
        Triton kernel); None when it does not sample."""
        if not self.sample:
            return None
        e = int(self.ensemble.elites.numel())
        shape = (e, rows // e, self.ensemble.out_dim)
        return torch.stack([self._normal(shape, device) for _ in range(horizon)])

    def _normal(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """One step's standard normal noise, drawn from the generator (on its device) and
        moved to `device`: the one draw that __call__ and draw_noise both make."""
        noise = torch.randn(shape, generator=self.generator, device=self._draw_device(device))
        return noise.to(device)

    def _draw_device(self, device: torch.device) -> torch.device:
        """Where random draws happen: on the generator's device (a CPU generator for a
        CUDA model costs one copy per step; a CUDA one keeps a plan call on the GPU and
        capturable as a CUDA graph), or on `device` when there is no generator."""
        return device if self.generator is None else self.generator.device

    @torch.no_grad()
    def __call__(
        self, state: torch.Tensor, action: torch.Tensor, predict: Predict | None = None
    ) -> torch.Tensor:
        """The next state [R, O]. `predict` replaces the ensemble's own `predict` (an
        accelerator's folded form of the same members): the same rows, member assignment
        and noise draws either way."""
        ens = self.ensemble
        x = torch.cat([state, action], dim=-1)  # [R, I] raw
        rows, e = x.shape[0], int(ens.elites.numel())
        predict = ens.predict if predict is None else predict
        if self.propagation == "expectation":
            mean, _ = predict(x.expand(e, *x.shape))
            return state + mean.mean(dim=0)
        if self.propagation == "tsinf":  # rows already interleave the members
            grouped = x.view(rows // e, e, -1).transpose(0, 1)
        else:
            group = self._grouping(rows)
            grouped = x[group]  # [E', R / E', I]
        mean, std = predict(grouped)  # raw state-change units
        if self.sample:
            mean = torch.addcmul(mean, std, self._normal(mean.shape, mean.device))
        if self.propagation == "tsinf":
            delta = mean.transpose(0, 1).reshape(rows, -1)
        else:
            delta = torch.empty_like(state)
            delta[group] = mean
        return state + delta
