"""CUDA graph capture of plan calls gives the plans of the plain planner (needs a GPU;
skipped without one, with the reason shown)."""

import numpy as np
import pytest
import torch
from objectives import objective

from dynaplan.accel.graphed import GraphedPlanner
from dynaplan.agent import MPCAgent
from dynaplan.models import DynamicsModel, EnsembleDynamics, GaussianEnsemble, RewardModel
from dynaplan.planners import make_planner

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")
LOW, HIGH = np.array([-2.0]), np.array([2.0])


def seed_objective():
    torch.manual_seed(0)
    dyn, rew = DynamicsModel(3, 1), RewardModel(3, 1)
    return objective(dyn.to(CUDA).eval(), rew.to(CUDA).eval(), kernel="torch")


def ensemble_objective(propagation):
    torch.manual_seed(0)
    ens = GaussianEnsemble(4, 3, members=5, hidden=(64, 64)).to(CUDA).eval()
    gen = torch.Generator(device=CUDA).manual_seed(5)
    dyn = EnsembleDynamics(ens, propagation, particles=10, generator=gen)
    return objective(dyn, lambda s, a, s2: -(s2**2).sum(-1), kernel="torch")


def planner_pair(name, objective, **options):
    """The same planner twice, sharing one objective and one generator."""
    gen = torch.Generator(device=CUDA).manual_seed(3)
    return tuple(make_planner(name, objective, LOW, HIGH, 8, gen, **options) for _ in "ab")


def same_plans(eager, graphed, obs, steps=4):
    """Plan `steps` times with warm start through both; generator states are copied from
    the eager planner's before each graphed call, so the draws are the same."""
    gens = (eager.generator, *eager.objective.generators)
    init = None
    for _ in range(steps):
        states = [g.get_state() for g in gens]
        expected = eager.plan(obs, init_mean=init)
        after = [g.get_state() for g in gens]
        for g, s in zip(gens, states):
            g.set_state(s)
        got = graphed.plan(obs, init_mean=init)
        torch.testing.assert_close(got.actions, expected.actions, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got.predicted_return, expected.predicted_return,
                                   rtol=1e-4, atol=1e-3)
        for g, s in zip(gens, after):  # a replay advances the generators as a plain call
            assert torch.equal(g.get_state(), s)
        init = expected.actions.roll(-1, dims=1)


@pytest.mark.parametrize("name, options", [
    ("cem", dict(num_sequences=64, num_iterations=3, num_elites=8)),
    ("random", dict(num_sequences=64)),
    ("icem", dict(num_sequences=64, num_iterations=3, num_elites=8)),
    ("mppi", dict(num_sequences=64, num_iterations=3)),
])
def test_graphed_planner_gives_the_plain_planners_plans(name, options):
    eager, inner = planner_pair(name, seed_objective(), **options)
    graphed = GraphedPlanner(inner)
    obs = torch.randn(3, 3, device=CUDA)
    same_plans(eager, graphed, obs)
    assert graphed.captures == 2  # cold start and warm start: two input signatures


@pytest.mark.parametrize("propagation", ["tsinf", "ts1", "expectation"])
def test_graphed_ensemble_planning_draws_the_same_particles(propagation):
    eager, inner = planner_pair("cem", ensemble_objective(propagation), num_sequences=32,
                                num_iterations=2, num_elites=4)
    same_plans(eager, GraphedPlanner(inner), torch.randn(2, 3, device=CUDA))


def test_refresh_recaptures_with_the_new_weights():
    seed = seed_objective()
    eager, inner = planner_pair("cem", seed, num_sequences=32, num_iterations=2,
                                num_elites=4)
    graphed = GraphedPlanner(inner)
    obs = torch.randn(1, 3, device=CUDA)
    same_plans(eager, graphed, obs, steps=1)
    with torch.no_grad():
        for p in seed.dynamics.parameters():
            p.mul_(1.5)
    seed.refresh()
    same_plans(eager, graphed, obs, steps=1)
    assert graphed.captures == 2


def test_agent_acts_through_a_graph():
    _, inner = planner_pair("cem", seed_objective(), num_sequences=32, num_iterations=2,
                            num_elites=4)
    agent = MPCAgent(GraphedPlanner(inner), CUDA)
    for _ in range(3):
        action = agent.act(np.zeros(3, dtype=np.float32))
        assert action.shape == (1,) and -2 <= action[0] <= 2


def test_train_with_cuda_graph_runs(tmp_path):
    from conftest import TINY_NO_DEVICE

    from dynaplan.app.cli import main

    assert main(["train", *TINY_NO_DEVICE, "--device", "cuda", "--cuda-graph", "on",
                 "--out", str(tmp_path / "run")]) == 0
    assert main(["train", *TINY_NO_DEVICE, "--device", "cuda", "--cuda-graph", "on",
                 "--dynamics", "ensemble", "--ensemble-size", "2", "--particles", "2",
                 "--ensemble-hidden", "16", "--propagation", "tsinf",
                 "--out", str(tmp_path / "ens")]) == 0
