"""Fitting a GaussianEnsemble: Gaussian NLL, one bootstrap resample per member.

Every member draws its own bootstrap sample (rows with replacement, same count as the
training split) once per fit, as PETS does, so members disagree where data is scarce.
Validation is per member (MSE of the mean on the held-out split); with `keep` set, the
members with the lowest validation loss are the ones used for planning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from dynaplan.errors import ConfigError
from dynaplan.models.ensemble import GaussianEnsemble


@dataclass(frozen=True)
class EnsembleFitResult:
    train_nll: float  # mean over members, last epoch
    valid_mse: list[float]  # per member, normalized units
    kept: list[int]
    seconds: float


class EnsembleFitter:
    def __init__(
        self,
        ensemble: GaussianEnsemble,
        lr: float = 1e-3,
        weight_decay: float = 5e-5,
        epochs: int = 50,
        batch_size: int = 256,
        keep: int | None = None,
    ) -> None:
        self.ensemble = ensemble
        self.optimizer = torch.optim.Adam(ensemble.parameters(), lr=lr, weight_decay=weight_decay)
        self.epochs, self.batch_size = epochs, batch_size
        self.keep = keep or ensemble.members

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        train: np.ndarray,
        valid: np.ndarray,
        generator: torch.Generator,
    ) -> EnsembleFitResult:
        """x [n, I], y [n, D] raw; `train`/`valid` are row indices."""
        if len(train) < 2:
            raise ConfigError("need at least 2 training transitions to fit the ensemble")
        start = time.perf_counter()
        ens = self.ensemble
        device = ens.elites.device
        x, y = x.to(device), y.to(device)
        tr = torch.as_tensor(train, device=device)
        ens.input_norm.fit(x[tr])
        ens.output_norm.fit(y[tr])
        xn, yn = ens.input_norm.normalize(x), ens.output_norm.normalize(y)
        e, n = ens.members, len(train)
        boot = tr[torch.randint(n, (e, n), generator=generator).to(device)]  # [E, n]
        ens.train()
        last = 0.0
        for _ in range(self.epochs):
            order = torch.argsort(torch.rand(e, n, generator=generator), dim=1).to(device)
            rows = torch.gather(boot, 1, order)
            total = 0.0
            for lo in range(0, n, self.batch_size):
                idx = rows[:, lo : lo + self.batch_size]  # [E, b]: each member its own rows
                loss = ens.nll(xn[idx], yn[idx]).sum()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += loss.item() / e * idx.shape[1]
            last = total / n
            if not np.isfinite(last):
                raise ConfigError("ensemble loss became NaN/inf; lower the learning rate")
        ens.eval()
        if len(valid):
            va = torch.as_tensor(valid, device=device)
            mse = ens.mse(xn[va], yn[va])
        else:
            mse = torch.zeros(e, device=device)
        ens.keep_best(mse, self.keep)
        return EnsembleFitResult(
            train_nll=last,
            valid_mse=mse.tolist(),
            kept=ens.elites.tolist(),
            seconds=time.perf_counter() - start,
        )
