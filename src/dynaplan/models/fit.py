"""Supervised fitting of the dynamics and reward models (the seed's Task 1, fixed).

Each fit refits the normalizers on the training split, then runs `epochs` passes of Adam
on MSE in normalized space with Gaussian input noise. Every training row is used in every
epoch, in ceil(n / batch_size) batches of near-equal size (never more than batch_size
rows, except that a lone row joins its neighbour so BatchNorm never sees a batch of one).
Near-equal, not "full batches and a small rest": with 2,080 rows and batch 2,000 a rest of
80 rows would be the last batch of every epoch, its noisy statistics would dominate
BatchNorm's running averages, and the eval-mode models would be several times worse
(measured: benchmarks/batch_split.py). (The seed skipped any batch that did not leave a
full batch after it, so with its defaults it did not train at all below 2,500
transitions.)

A probabilistic ensemble (PETS) is fitted by its own `EnsembleFitter` (Gaussian NLL, one
bootstrap per member) on the same split; the MSE loop then fits the reward model alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dynaplan.data.buffer import ReplayBuffer, Split
from dynaplan.errors import ConfigError
from dynaplan.models import native_fit
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.ensemble_fit import EnsembleFitter
from dynaplan.models.world import DynamicsModel, RewardModel


@dataclass(frozen=True)
class FitResult:
    """Losses are MSE in normalized units; train = mean over the last epoch's batches.
    For an ensemble, dynamics_train is its mean Gaussian NLL per member and
    dynamics_valid the mean validation MSE of its kept members."""

    dynamics_train: float
    dynamics_valid: float
    reward_train: float
    reward_valid: float
    seconds: float


def minibatches(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Cut a permutation into ceil(n / batch_size) batches of near-equal size covering
    every row; a one-row batch (possible only for tiny n) joins the batch before it, as
    BatchNorm cannot normalize one row."""
    count = -(-perm.numel() // max(batch_size, 2))
    batches = list(torch.tensor_split(perm, count))
    if len(batches) > 1 and batches[-1].numel() == 1:
        tail = batches.pop()
        batches[-1] = torch.cat([batches[-1], tail])
    return batches


VALID_CHUNK = 1024
"""Validation rows per forward pass. A whole-split pass made [rows, 512] temporaries of
8 MB at 4,000 rows, which glibc maps fresh from the OS and the kernel faults in page by
page; in chunks they are reused from the heap (one-epoch fits of `dynaplan bench`:
0.309 vs 0.319 s, interleaved, medians of 10)."""


@torch.no_grad()
def _mse(net: nn.Module, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> float:
    """Mean squared error of eval-mode `net` over `rows`, in chunks of VALID_CHUNK."""
    total = x.new_zeros(())
    for chunk in rows.split(VALID_CHUNK):
        total += torch.sum((net(x[chunk]) - y[chunk]) ** 2)
    return (total / (rows.numel() * y.shape[1])).item()


def _mse_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
              opt: torch.optim.Optimizer, native: bool) -> torch.Tensor:
    """MSE of training-mode `net` on (x, y) with the gradients of its parameters set:
    with `native` (native_fit.takes_mse_step holds) in one native step without autograd's
    graph (same gradients), else by autograd. Returns the loss without a graph."""
    if native:
        return native_fit.mse_step(net, x, y)
    loss = torch.mean((net(x) - y) ** 2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    return loss.detach()


def _adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with its fused kernel where this torch has one for the device (one pass over
    each parameter instead of about ten elementwise kernels: the CPU default is a loop of
    single-tensor ops), else the default implementation. Same update either way."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


class ModelFitter:
    """Owns one Adam optimizer per model, kept across iterations (and checkpoints).

    `dynamics_fitter`: an EnsembleFitter of the GaussianEnsemble `dynamics`; its optimizer
    comes first in `optimizers`, and the MSE loop fits the reward model alone.
    """

    def __init__(
        self,
        dynamics: DynamicsModel | GaussianEnsemble,
        reward: RewardModel,
        lr: float,
        epochs: int,
        batch_size: int,
        input_noise: float,
        *,
        dynamics_fitter: EnsembleFitter | None = None,
    ) -> None:
        if dynamics_fitter is not None and dynamics_fitter.ensemble is not dynamics:
            raise ValueError("dynamics_fitter must fit the dynamics model it is given with")
        self.dynamics, self.dynamics_fitter = dynamics, dynamics_fitter
        # the models fitted here with MSE (the dynamics MLP unless an ensemble fitter has it)
        self.models: tuple[nn.Module, ...] = (
            (reward,) if dynamics_fitter is not None else (dynamics, reward))
        own = [_adam(m.parameters(), lr) for m in self.models]
        self.optimizers = own if dynamics_fitter is None else [dynamics_fitter.optimizer, *own]
        self._own_optimizers = own
        self.epochs, self.batch_size, self.input_noise = epochs, batch_size, input_noise

    def fit(
        self,
        buffer: ReplayBuffer,
        split: Split,
        generator: torch.Generator,
        progress: bool = False,
    ) -> FitResult:
        """Fit the models on `split.train`, report losses on `split.valid`."""
        if len(split.train) < 2:
            raise ConfigError("need at least 2 training transitions to fit the models")
        start = time.perf_counter()
        device = next(self.models[0].parameters()).device
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        obs, action, next_obs = as_t(buffer.obs), as_t(buffer.action), as_t(buffer.next_obs)
        x = torch.cat([obs, action], dim=-1)
        delta = DynamicsModel.targets(obs, next_obs)
        reward_target = as_t(buffer.reward)[:, None]
        targets = (reward_target,) if self.dynamics_fitter else (delta, reward_target)
        train_losses, valid_losses = self._fit_mse(x, targets, split, generator, progress)
        if self.dynamics_fitter is not None:
            result = self.dynamics_fitter.fit(x, delta, split.train, split.valid, generator)
            kept = [result.valid_mse[k] for k in result.kept]
            train_losses.insert(0, result.train_nll)
            valid_losses.insert(0, float(np.mean(kept)) if len(split.valid) else float("nan"))
        return FitResult(
            dynamics_train=train_losses[0],
            dynamics_valid=valid_losses[0],
            reward_train=train_losses[1],
            reward_valid=valid_losses[1],
            seconds=time.perf_counter() - start,
        )

    def _fit_mse(
        self,
        x: torch.Tensor,
        targets: tuple[torch.Tensor, ...],
        split: Split,
        generator: torch.Generator,
        progress: bool,
    ) -> tuple[list[float], list[float]]:
        """Epochs of Adam on MSE for `self.models` (one raw target each, inputs `x`);
        returns (last-epoch train losses, validation losses), normalized units."""
        device = x.device
        train = torch.as_tensor(split.train, device=device)
        valid = torch.as_tensor(split.valid, device=device)

        xs, ys = [], []
        for model, y in zip(self.models, targets, strict=True):
            model.input_norm.fit(x[train])
            model.output_norm.fit(y[train])
            xs.append(model.input_norm.normalize(x))
            ys.append(model.output_norm.normalize(y))

        for model in self.models:
            model.train()
        # decided once a fit (0.25 ms a check): batches differ only in rows, never fewer than 2
        native = [native_fit.takes_mse_step(m.net, xs[k][train[:2]])
                  for k, m in enumerate(self.models)]
        n_train = len(split.train)
        last_losses = [0.0] * len(self.models)
        for epoch in tqdm(range(self.epochs), desc="fit models", leave=False, disable=not progress):
            perm = torch.randperm(n_train, generator=generator).to(device)
            for idx in minibatches(train[perm], self.batch_size):
                noise = torch.randn(
                    (idx.numel(), x.shape[1]), generator=generator
                ).to(device) * self.input_noise
                for k, (model, opt) in enumerate(zip(self.models, self._own_optimizers)):
                    loss = _mse_step(model.net, xs[k][idx] + noise, ys[k][idx], opt,
                                     native[k])
                    opt.step()
                    if epoch == self.epochs - 1:
                        last_losses[k] += loss.item() * idx.numel() / n_train

        valid_losses = [float("nan")] * len(self.models)
        for k, model in enumerate(self.models):
            model.eval()
            if valid.numel():
                valid_losses[k] = _mse(model.net, xs[k], ys[k], valid)
        return last_losses, valid_losses
