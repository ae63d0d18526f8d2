"""Planners find known optima of analytic objectives, stay in bounds, rank NaN last."""

import numpy as np
import pytest
import torch

from dynaplan.planners import CEMPlanner, RandomShootingPlanner

H, A = 6, 2
LOW, HIGH = np.array([-1.0, -2.0]), np.array([1.0, 2.0])


class DistanceObjective:
    """-||actions - target(obs)||^2 with the target read from obs: [B, H*A]."""

    def __init__(self):
        self.calls = 0

    def __call__(self, obs, actions):
        self.calls += 1
        target = obs.view(obs.shape[0], 1, H, A)
        return -((actions - target) ** 2).sum(dim=(2, 3))


def make(kind, objective, n=200, seed=0, **kw):
    gen = torch.Generator().manual_seed(seed)
    common = dict(objective=objective, action_low=LOW, action_high=HIGH, horizon=H, generator=gen)
    if kind == "random":
        return RandomShootingPlanner(**common, num_sequences=n)
    return CEMPlanner(**common, num_sequences=n, num_iterations=kw.get("iters", 5),
                      num_elites=kw.get("elites", 20))


def targets(batch, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(batch, H, A, generator=g) * 1.6 - 0.8  # inside the bounds
    t[..., 1] *= 2
    return t


def test_cem_reaches_the_optimum_for_each_start_state():
    target = targets(3)
    plan = make("cem", DistanceObjective(), n=300, iters=8, elites=30).plan(target.view(3, -1))
    assert plan.actions.shape == (3, H, A) and plan.action.shape == (3, A)
    assert torch.allclose(plan.actions, target, atol=0.15)
    assert torch.allclose(plan.action, target[:, 0], atol=0.15)
    # the reported return is the objective's value of the returned sequence
    expected = -((plan.actions - target) ** 2).sum(dim=(1, 2))
    assert torch.allclose(plan.predicted_return, expected, atol=1e-5)


def test_cem_beats_random_shooting_at_equal_samples():
    target = targets(8, seed=2)
    obs = target.view(8, -1)
    cem = make("cem", DistanceObjective(), n=100, iters=5, elites=10).plan(obs)
    rnd = make("random", DistanceObjective(), n=500).plan(obs)  # 5 x 100 samples
    assert (cem.predicted_return > rnd.predicted_return).all()


def test_random_shooting_returns_its_best_sample():
    target = targets(2)
    objective = DistanceObjective()
    planner = make("random", objective, n=50)
    plan = planner.plan(target.view(2, -1))
    assert objective.calls == 1
    gen = torch.Generator().manual_seed(0)  # replay the planner's samples
    u = torch.rand((2, 50, H, A), generator=gen)
    samples = planner.low + u * (planner.high - planner.low)
    scores = -((samples - target[:, None]) ** 2).sum(dim=(2, 3))
    assert torch.equal(plan.actions, samples[torch.arange(2), scores.argmax(1)])


@pytest.mark.parametrize("kind", ["cem", "random"])
def test_actions_stay_inside_bounds_when_optimum_is_outside(kind):
    target = torch.full((1, H, A), 5.0)  # far above HIGH
    plan = make(kind, DistanceObjective()).plan(target.view(1, -1))
    assert (plan.actions >= torch.tensor(LOW, dtype=torch.float32) - 1e-6).all()
    assert (plan.actions <= torch.tensor(HIGH, dtype=torch.float32) + 1e-6).all()
    if kind == "cem":  # CEM moves toward the bound closest to the optimum
        assert (plan.actions.mean(dim=(0, 1)) > 0.7 * torch.tensor(HIGH)).all()


@pytest.mark.parametrize("kind", ["cem", "random"])
def test_nan_returns_rank_last(kind):
    def objective(obs, actions):
        score = -((actions - 0.5) ** 2).sum(dim=(2, 3))
        return torch.where(actions[:, :, 0, 0] > 0, torch.nan, score)  # optimum region is NaN

    plan = make(kind, objective).plan(torch.zeros(1, 3))
    assert torch.isfinite(plan.predicted_return).all()
    assert plan.action[0, 0] <= 0


@pytest.mark.parametrize("kind", ["cem", "random"])
def test_same_seed_same_plan(kind):
    obs = targets(2).view(2, -1)
    a = make(kind, DistanceObjective(), seed=7).plan(obs)
    b = make(kind, DistanceObjective(), seed=7).plan(obs)
    assert torch.equal(a.actions, b.actions)


def test_cem_refuses_more_elites_than_sequences():
    with pytest.raises(ValueError):
        make("cem", DistanceObjective(), n=10, elites=11)
