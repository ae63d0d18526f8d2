"""Supervised fitting of the dynamics and reward models (the seed's Task 1, fixed).

Each fit refits the normalizers on the training split, then runs `epochs` passes of Adam
on MSE in normalized space with Gaussian input noise. Every training row is used in every
epoch: the last minibatch is smaller, and a one-row remainder joins the batch before it
so BatchNorm never sees a batch of one. (The seed skipped any batch that did not leave a
full batch after it, so with its defaults it did not train at all below 2,500
transitions.)
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
from dynaplan.models.world import DynamicsModel, RewardModel


@dataclass(frozen=True)
class FitResult:
    """Losses are MSE in normalized units; train = mean over the last epoch's batches."""

    dynamics_train: float
    dynamics_valid: float
    reward_train: float
    reward_valid: float
    seconds: float


def minibatches(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Cut a permutation into batches covering every row; a one-row tail joins the batch
    before it (BatchNorm cannot normalize one row), and batches hold at least two rows."""
    batches = list(torch.split(perm, max(batch_size, 2)))
    if len(batches) > 1 and batches[-1].numel() == 1:
        tail = batches.pop()
        batches[-1] = torch.cat([batches[-1], tail])
    return batches


class ModelFitter:
    """Owns one Adam optimizer per model, kept across iterations (and checkpoints)."""

    def __init__(
        self,
        dynamics: DynamicsModel,
        reward: RewardModel,
        lr: float,
        epochs: int,
        batch_size: int,
        input_noise: float,
    ) -> None:
        self.models: tuple[nn.Module, nn.Module] = (dynamics, reward)
        self.optimizers = [torch.optim.Adam(m.parameters(), lr=lr) for m in self.models]
        self.epochs, self.batch_size, self.input_noise = epochs, batch_size, input_noise

    def fit(
        self,
        buffer: ReplayBuffer,
        split: Split,
        generator: torch.Generator,
        progress: bool = False,
    ) -> FitResult:
        """Fit both models on `split.train`, report losses on `split.valid`."""
        if len(split.train) < 2:
            raise ConfigError("need at least 2 training transitions to fit the models")
        start = time.perf_counter()
        dynamics, reward = self.models
        device = next(dynamics.parameters()).device
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        obs, action, next_obs = as_t(buffer.obs), as_t(buffer.action), as_t(buffer.next_obs)
        x = torch.cat([obs, action], dim=-1)
        targets = (DynamicsModel.targets(obs, next_obs), as_t(buffer.reward)[:, None])
        train = torch.as_tensor(split.train, device=device)
        valid = torch.as_tensor(split.valid, device=device)

        xs, ys = [], []
        for model, y in zip(self.models, targets):
            model.input_norm.fit(x[train])
            model.output_norm.fit(y[train])
            xs.append(model.input_norm.normalize(x))
            ys.append(model.output_norm.normalize(y))

        for model in self.models:
            model.train()
        n_train = len(split.train)
        last_losses = [0.0, 0.0]
        for epoch in tqdm(range(self.epochs), desc="fit models", leave=False, disable=not progress):
            perm = torch.randperm(n_train, generator=generator).to(device)
            for idx in minibatches(train[perm], self.batch_size):
                noise = torch.randn(
                    (idx.numel(), x.shape[1]), generator=generator
                ).to(device) * self.input_noise
                for k, (model, opt) in enumerate(zip(self.models, self.optimizers)):
                    loss = torch.mean((model.net(xs[k][idx] + noise) - ys[k][idx]) ** 2)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if epoch == self.epochs - 1:
                        last_losses[k] += loss.item() * idx.numel() / n_train

        valid_losses = [float("nan"), float("nan")]
        for k, model in enumerate(self.models):
            model.eval()
            if valid.numel():
                with torch.no_grad():
                    pred = model.net(xs[k][valid])
                    valid_losses[k] = torch.mean((pred - ys[k][valid]) ** 2).item()
        return FitResult(
            dynamics_train=last_losses[0],
            dynamics_valid=valid_losses[0],
            reward_train=last_losses[1],
            reward_valid=valid_losses[1],
            seconds=time.perf_counter() - start,
        )
