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

import torch

from dynaplan.models.ensemble import GaussianEnsemble

PROPAGATIONS = ("expectation", "ts1", "tsinf")


class EnsembleDynamics:
    """(state [R, O], action [R, A]) -> next_state [R, O] with R = sequences x particles."""

    def __init__(
        self,
        ensemble: GaussianEnsemble,
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
        e = int(self.ensemble.elites.numel())
        if self.propagation == "tsinf":
            return torch.arange(rows, device=self.ensemble.elites.device) % self.particles % e
        perm = torch.randperm(rows, generator=self.generator, device="cpu").to(
            self.ensemble.elites.device)
        member = torch.empty(rows, dtype=torch.long, device=perm.device)
        member[perm] = torch.arange(rows, device=perm.device) % e
        return member

    @torch.no_grad()
    def __call__(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        ens = self.ensemble
        x = ens.input_norm.normalize(torch.cat([state, action], dim=-1))  # [R, I]
        rows, e = x.shape[0], int(ens.elites.numel())
        if self.propagation == "expectation":
            mean, _ = self.ensemble(x.expand(e, *x.shape), ens.elites)
            delta = mean.mean(dim=0)
        else:
            member = self.member_of_rows(rows)
            order = torch.argsort(member, stable=True)  # rows grouped by member
            grouped = x[order].view(e, rows // e, -1)
            mean, logvar = self.ensemble(grouped, ens.elites)
            if self.sample:
                noise = torch.randn(mean.shape, generator=self.generator, device="cpu")
                mean = mean + torch.exp(0.5 * logvar) * noise.to(mean.device)
            delta = torch.empty_like(x[:, : ens.out_dim])
            delta[order] = mean.reshape(rows, -1)
        return state + ens.output_norm.denormalize(delta)
