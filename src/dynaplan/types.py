"""The contracts between dynaplan's parts: small protocols, the two records that cross
them (a plan, a predicted trajectory) and the shared choices, each written once.

Shape letters, used in every docstring:

    B  start states (environments planned for at once)
    N  candidate action sequences per start state
    P  particles per candidate (rollouts through a stochastic model)
    E  ensemble members
    H  planning horizon (steps)
    R  rows of one rollout batch (R = B * N * P, particle index fastest)
    O  observation size          A  action size
    I  model input size          D  model output size

Data flows one way: env -> buffer -> fit(model) -> objective(model, reward, termination)
-> planner -> agent -> env. A planner sees only an `Objective` and the action bounds; an
objective steps a `Dynamics` model through a `Rollout` (the reference horizon loop, or an
accelerator that computes the same, chosen once in build.py); `fit` trains any
`Learnable` model through a `FitStep`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import Tensor

# -- choices written once (planner names come from planners.PLANNERS, accelerator names
#    from accel.ACCELERATORS, presets from presets.PRESETS) ---------------------------------

SAMPLINGS = ("clip", "truncnorm")
"""How a Gaussian planner keeps its samples inside the action bounds."""
PROPAGATIONS = ("ts1", "tsinf", "expectation")
"""How particles pass through an ensemble (Chua et al. 2018, sec. 5; models/propagation.py)."""
ACTIVATIONS = ("relu", "silu")
"""Hidden activations of the learned networks."""
DYNAMICS_MODELS = ("mlp", "ensemble", "deterministic-ensemble")
"""The dynamics model types a run can learn (built in build.py)."""
REWARDS = ("learned", "known", "shaped")
"""What a run plans with: the learned reward model, the env's own reward, or a planning
reward of ours for it (envs/rewards.py); a `module:function` is a user's own
(envs/functions.py)."""
TERMINATIONS = ("auto", "none", "known", "learned")
"""Where predicted returns stop: never, at the env's known (or registered) termination, at
a learned termination model's, or auto (known where there is one, else learned once the
data hold a termination); a `module:function` is a user's own (envs/functions.py)."""
TERMINATION_VALUES = ("zero", "floor")
"""What a step after a predicted termination is worth to the planner: 0, the hard cut, or
the lowest of 0 and the lowest per-step reward in the data (floor) (objective.py)."""
WARM_STARTS = ("auto", "on", "off")
TENSORBOARD_MODES = ("auto", "on", "off")
"""TensorBoard event files: where the tensorboard package imports, always (refused without
it), never (tensorboard_log.py)."""
SWITCHES = ("off", "on")
DEVICES = ("auto", "cpu", "cuda")
FILLS = ("center", "repeat")
"""The new last step of a shifted plan: the bounds' center, or the last planned action."""

# -- planning ------------------------------------------------------------------------------

RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""(obs [..., O], action [..., A], next_obs [..., O]) -> reward [...], batched torch."""
TerminationFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""(obs [..., O], action [..., A], next_obs [..., O]) -> bool [...]: True where the episode
would end after that transition."""


class Objective(Protocol):
    """What a planner maximizes."""

    def __call__(self, obs: Tensor, actions: Tensor) -> Tensor:
        """obs [B, O], actions [B, N, H, A] inside the bounds -> predicted returns [B, N]
        (NaN allowed: planners rank it last)."""
        ...


class Dynamics(Protocol):
    """A model the objective steps. `particles`: rollouts it wants per candidate sequence
    (1 for a deterministic model; a plain function without the attribute counts as 1)."""

    particles: int

    def __call__(self, state: Tensor, action: Tensor) -> Tensor:
        """state [R, O], action [R, A] -> next state [R, O]; rows are (sequence, particle)
        pairs with the particle index fastest."""
        ...


@dataclass(frozen=True)
class Trajectory:
    """What a `Rollout` predicts for R rows over H steps; the objective computes from it
    whatever is not given. A rollout gives `returns` alone only when there is no
    termination to apply (it was told so when it was built)."""

    states: Tensor | None = None
    """[R, H + 1, O]: s_0 .. s_H."""
    rewards: Tensor | None = None
    """[R, H]: the learned reward of each step, where the rollout ran the reward model."""
    returns: Tensor | None = None
    """[R]: the rewards summed over the horizon."""


class Rollout(Protocol):
    """How an objective's horizon loop runs. `name` is what a run reports (summary.json's
    rollout_kernel); `refresh` snapshots the models' weights after a fit (a no-op for a
    rollout that reads the models themselves)."""

    name: str

    def __call__(self, state: Tensor, actions: Tensor) -> Trajectory:
        """state [R, O], actions [R, H, A] -> the predicted trajectory."""
        ...

    def refresh(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """action: [B, A] to execute now; actions: [B, H, A] the whole chosen sequence;
    predicted_return: [B] the objective's value of that sequence; elites: [B, K, H, A]
    sequences a planner wants back at the next step (iCEM's kept elites), else None.

    `actions` and `elites` are what an MPCAgent shifts by one step and passes back to
    `plan` as `init_mean` and `init_elites` (its warm start)."""

    action: Tensor
    actions: Tensor
    predicted_return: Tensor
    elites: Tensor | None = None


# -- learning ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transitions:
    """A data set on one device: obs [n, O], action [n, A], reward [n], next_obs [n, O],
    terminated [n] (bool)."""

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    terminated: Tensor


class Learnable(Protocol):
    """A model `models.fit` trains: it names what it learns from the data and states its
    own loss. Losses are per member: a 0-dim tensor for one network, [E] for an ensemble
    of E members (the fit minimizes their sum and reports their mean)."""

    def examples(self, data: Transitions) -> tuple[Tensor, Tensor]:
        """Raw inputs [n, I] and targets [n, D] for every transition."""
        ...

    def prepare(self, x: Tensor, y: Tensor, train: Tensor) -> tuple[Tensor, Tensor]:
        """Fit the model's normalizers on the rows `train` of (x, y); all rows normalized."""
        ...

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Training loss per member on a normalized batch, with its graph (train mode)."""
        ...

    def validation_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-member loss on held-out normalized rows (eval mode, no graph)."""
        ...

    def keep(self, valid: Tensor | None) -> float:
        """Choose what plans from the per-member validation losses (None: no validation
        rows) and return the reported validation loss (NaN without rows)."""
        ...

    def parameters(self): ...
    def train(self, mode: bool = True): ...
    def eval(self): ...


class FitStep(Protocol):
    """One batch's gradients: what `loss.sum().backward()` after zeroing the gradients
    gives, by autograd (the reference, models/fitting.py) or by an accelerator."""

    def __call__(self, model: Learnable, x: Tensor, y: Tensor) -> Tensor:
        """The model's per-member loss on the normalized batch (x, y), without a graph,
        with every parameter's .grad set (replaced) to the gradient of the losses' sum."""
        ...


class Optimizer(Protocol):
    """What a fit needs of an optimizer: torch.optim.Adam (the reference) or an
    accelerator's (accel.select_optimizer); state_dicts in torch.optim's format."""

    def step(self) -> Any: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


SelectFitStep = Callable[[Learnable, Tensor], FitStep]
"""Chooses a model's FitStep once a fit, from the model (in train mode) and a batch of at
least two normalized input rows."""


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field whose `help` (and optional `choices`, `flag`) the command line
    shows: every option dataclass (the planners' options, the run configuration) declares
    its fields this way."""
    return field(default=default, metadata={"help": help, **metadata})
