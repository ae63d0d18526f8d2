"""Supervised fitting of any `Learnable` model (types.py): the seed's Task 1, fixed.

A fit refits each model's normalizers on the training split, then runs `epochs` passes of
Adam over it; each model states its own loss (the MLPs the mean squared error, the
ensemble its Gaussian NLL per member). How rows are drawn is the model's `batching`:

- `Minibatches` (the seed's networks): every training row in every epoch, in
  ceil(n / batch_size) batches of near-equal size (never more than batch_size rows, except
  that a lone row joins its neighbour so BatchNorm never sees a batch of one), with
  Gaussian noise added to the normalized inputs. Near-equal, not "full batches and a small
  rest": with 2,080 rows and batch 2,000 a rest of 80 rows would be the last batch of every
  epoch, its noisy statistics would dominate BatchNorm's running averages, and the
  eval-mode models would be several times worse (measured: benchmarks/batch_split.py).
  (The seed skipped any batch that did not leave a full batch after it, so with its
  defaults it did not train at all below 2,500 transitions.)
- `Bootstrap` (an ensemble, PETS): each member draws its own resample of the training rows
  (with replacement, as many as there are) once per fit, and walks it in its own order
  every epoch, `batch_size` rows a step.

Models that share one batching (the seed's dynamics and reward networks) are fitted on the
same batches, model after model within each batch; groups run in the order their first
model is given. After the epochs each model is validated on the held-out rows and chooses
what plans (`keep`: an ensemble keeps its best members).

A part that is not `fitted` (the reward model where the planner plans with a known reward)
is neither trained nor validated, but its batching still draws its batches, so every other
model sees the same draws, and a run the same numbers, whether it is fitted or not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from dynaplan.data.buffer import Split
from dynaplan.errors import ConfigError
from dynaplan.types import FitStep, Learnable, Optimizer, SelectFitStep, Transitions


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


@dataclass(frozen=True)
class Batch:
    """Row indices into the data ([n] or [E, n]: each member its own rows), the noise to
    add to the normalized inputs (or None) and the rows it counts for in the mean loss."""

    rows: torch.Tensor
    noise: torch.Tensor | None
    count: int


@dataclass(frozen=True)
class Minibatches:
    """Shuffled near-equal minibatches of every training row, input noise of std
    `input_noise` (normalized units) drawn per batch."""

    batch_size: int
    input_noise: float = 0.0

    def begin(self, train: torch.Tensor, width: int, generator: torch.Generator) -> None:
        """Nothing is drawn once a fit."""

    def epoch(self, train: torch.Tensor, width: int,
              generator: torch.Generator) -> Iterator[Batch]:
        device = train.device
        perm = torch.randperm(train.numel(), generator=generator).to(device)
        for idx in minibatches(train[perm], self.batch_size):
            noise = torch.randn((idx.numel(), width), generator=generator).to(device)
            yield Batch(idx, noise * self.input_noise, idx.numel())

    @staticmethod
    def mean(losses: list[tuple[float, int]], n: int) -> float:
        """The epoch's mean loss per row from (batch mean, batch rows)."""
        total = 0.0
        for loss, count in losses:
            total += loss * count / n
        return total


@dataclass
class Bootstrap:
    """One bootstrap resample of the training rows per member (drawn once a fit), each
    walked in its own shuffled order every epoch, `batch_size` rows a member a step."""

    members: int
    batch_size: int
    _resample: torch.Tensor | None = field(default=None, repr=False)

    def begin(self, train: torch.Tensor, width: int, generator: torch.Generator) -> None:
        n = train.numel()
        draw = torch.randint(n, (self.members, n), generator=generator)
        self._resample = train[draw.to(train.device)]  # [E, n]

    def epoch(self, train: torch.Tensor, width: int,
              generator: torch.Generator) -> Iterator[Batch]:
        assert self._resample is not None, "begin() draws the resample first"
        e, n = self._resample.shape
        order = torch.argsort(torch.rand(e, n, generator=generator), dim=1).to(train.device)
        rows = torch.gather(self._resample, 1, order)
        for lo in range(0, n, self.batch_size):
            idx = rows[:, lo : lo + self.batch_size]  # [E, b]: each member its own rows
            yield Batch(idx, None, idx.shape[1])

    @staticmethod
    def mean(losses: list[tuple[float, int]], n: int) -> float:
        total = 0.0
        for loss, count in losses:
            total += loss * count
        return total / n


Batching = Minibatches | Bootstrap


def gradient_step(model: Learnable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reference FitStep: the model's loss, its sum's gradients by autograd."""
    loss = model.loss(x, y)
    for p in model.parameters():
        p.grad = None
    loss.sum().backward()
    return loss.detach()


def reference_step(model: Learnable, x: torch.Tensor) -> FitStep:
    """The reference SelectFitStep: autograd for every model."""
    return gradient_step


def adam(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0) -> Optimizer:
    """The reference optimizer: torch.optim.Adam (Kingma & Ba 2015) with L2 weight decay.
    Runs build theirs through accel.select_optimizer (the same update, faster)."""
    return torch.optim.Adam(list(params), lr=lr, weight_decay=weight_decay)


@dataclass
class FitPart:
    """One model of a fit: its optimizer (kept across fits and checkpoints), how its rows
    are drawn, and how a batch's gradients are computed (chosen once a fit)."""

    name: str
    model: Learnable
    optimizer: Optimizer
    batching: Batching
    select_step: SelectFitStep = reference_step
    fitted: bool = True
    """False: the model is not trained (its batches are still drawn); FitResult leaves it
    out."""


@dataclass(frozen=True)
class FitResult:
    """Per model (by part name): the last epoch's mean training loss per row (an ensemble's
    mean over its members) and the validation loss of what plans (`Learnable.keep`), in
    the model's own units; and the whole fit's wall seconds."""

    train: dict[str, float]
    valid: dict[str, float]
    seconds: float


def finite(result: FitResult, models: Sequence[nn.Module]) -> bool:
    """Whether every training loss of a fit and every weight of `models` is finite."""
    return (all(math.isfinite(v) for v in result.train.values())
            and all(bool(torch.isfinite(t).all()) for model in models
                    for t in model.state_dict().values() if t.is_floating_point()))


def fit(parts: Sequence[FitPart], data: Transitions, split: Split, epochs: int,
        generator: torch.Generator, progress: bool = False) -> FitResult:
    """Fit every part's model on `split.train` of `data`, validate on `split.valid`."""
    if len(split.train) < 2:
        raise ConfigError("need at least 2 training transitions to fit the models")
    start = time.perf_counter()
    device = data.obs.device
    train = torch.as_tensor(split.train, device=device)
    valid = torch.as_tensor(split.valid, device=device)
    prepared = [p.model.prepare(*p.model.examples(data), train) if p.fitted else
                p.model.examples(data) for p in parts]
    groups: dict[int, list[int]] = {}  # parts sharing one batching object, in order
    for k, p in enumerate(parts):
        groups.setdefault(id(p.batching), []).append(k)
    train_loss: dict[str, float] = {}
    bar = tqdm(total=epochs * len(groups), desc="fit models", leave=False,
               disable=not progress)
    for members in groups.values():
        train_loss.update(_fit_group([parts[k] for k in members],
                                     [prepared[k] for k in members],
                                     train, epochs, generator, bar))
    bar.close()
    valid_loss = {}
    for p, (x, y) in zip(parts, prepared, strict=True):
        if not p.fitted:
            continue
        p.model.eval()
        score = p.model.validation_loss(x[valid], y[valid]) if valid.numel() else None
        valid_loss[p.name] = p.model.keep(score)
    return FitResult(train_loss, valid_loss, time.perf_counter() - start)


def _fit_group(parts: list[FitPart], prepared: list[tuple[torch.Tensor, torch.Tensor]],
               train: torch.Tensor, epochs: int, generator: torch.Generator,
               bar: tqdm) -> dict[str, float]:
    """Epochs of one batching over its models; the last epoch's mean losses by name."""
    batching = parts[0].batching
    width = prepared[0][0].shape[1]
    trained = [k for k, p in enumerate(parts) if p.fitted]
    for k in trained:
        parts[k].model.train()
    steps = {k: parts[k].select_step(parts[k].model, prepared[k][0][train[:2]])
             for k in trained}
    batching.begin(train, width, generator)
    last: dict[int, list[tuple[float, int]]] = {k: [] for k in trained}
    for epoch in range(epochs):
        for batch in batching.epoch(train, width, generator):
            for k in trained:
                p, (x, y) = parts[k], prepared[k]
                xb = x[batch.rows] if batch.noise is None else x[batch.rows] + batch.noise
                loss = steps[k](p.model, xb, y[batch.rows])
                p.optimizer.step()
                if epoch == epochs - 1:
                    last[k].append((loss.sum().item() / loss.numel(), batch.count))
        bar.update(1)
    n = train.numel()
    return {parts[k].name: batching.mean(losses, n) for k, losses in last.items()}
