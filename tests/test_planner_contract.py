"""What every registered planner promises (planners.PLANNERS, so a new planner is covered
by its registry line): a plan of the right shapes inside the bounds for every start state,
its inputs left alone, NaN returns never chosen, the same seed the same plan, a warm start
taken, and its options a dataclass whose fields say what they are and refuse bad values."""

import dataclasses

import pytest
import torch

from dynaplan.config import OPTIONS
from dynaplan.errors import ConfigError
from dynaplan.planners import PLANNERS, make_planner, planner_options

H, A, B = 5, 2, 3
LOW, HIGH = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 3.0])
SMALL = {"num_sequences": 24, "num_iterations": 2, "num_elites": 4}
"""Small sizes, given to each planner that has the option."""


def make(name, objective, seed=0, **options):
    sizes = {k: v for k, v in SMALL.items() if k in planner_options(name)}
    return make_planner(name, objective, LOW, HIGH, H, torch.Generator().manual_seed(seed),
                        **{**sizes, **options})


def quadratic(obs, actions):
    """Best at actions = 0.3 (inside the bounds of both dimensions), for every start state."""
    return -((actions - 0.3) ** 2).sum(dim=(-1, -2)) + obs[:, :1]


@pytest.mark.parametrize("name", PLANNERS)
def test_a_plan_has_the_right_shapes_and_stays_inside_the_bounds(name):
    obs = torch.randn(B, 4)
    obs_copy = obs.clone()
    plan = make(name, quadratic).plan(obs)
    assert plan.action.shape == (B, A) and plan.actions.shape == (B, H, A)
    assert plan.predicted_return.shape == (B,)
    assert torch.equal(plan.action, plan.actions[:, 0])
    assert ((plan.actions >= LOW) & (plan.actions <= HIGH)).all()
    assert torch.equal(obs, obs_copy)
    if plan.elites is not None:
        assert plan.elites.shape[0] == B and plan.elites.shape[2:] == (H, A)


@pytest.mark.parametrize("name", PLANNERS)
def test_nan_returns_are_never_chosen(name):
    def half_nan(obs, actions):
        returns = quadratic(obs, actions)
        bad = actions[..., 0, 0] > 0  # about half the candidates
        return torch.where(bad, torch.nan, returns)

    plan = make(name, half_nan).plan(torch.zeros(B, 4))
    assert torch.isfinite(plan.predicted_return).all()


@pytest.mark.parametrize("name", PLANNERS)
def test_the_same_seed_gives_the_same_plan_and_a_warm_start_is_taken(name):
    obs = torch.randn(B, 4)
    first, again = (make(name, quadratic, seed=7).plan(obs) for _ in range(2))
    assert torch.equal(first.actions, again.actions)
    warm = make(name, quadratic, seed=7).plan(obs, init_mean=first.actions,
                                              init_elites=first.elites)
    assert warm.actions.shape == (B, H, A)
    assert ((warm.actions >= LOW) & (warm.actions <= HIGH)).all()


@pytest.mark.parametrize("name", PLANNERS)
def test_options_are_a_dataclass_with_help_that_refuses_bad_values(name):
    cls = PLANNERS[name]
    fields = dataclasses.fields(cls.Options)
    assert fields and all(f.metadata.get("help") for f in fields)
    assert planner_options(name) == {f.name: f.default for f in fields}
    for f in fields:  # every option is a train flag, which names the planners taking it
        assert name in OPTIONS[f.name].planners
    with pytest.raises(ConfigError, match=f"planner {name!r}: num_sequences must be positive"):
        make(name, quadratic, num_sequences=0)
    with pytest.raises(ConfigError, match="has no option"):
        make(name, quadratic, no_such_option=1)
