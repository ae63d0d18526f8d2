"""The learned termination: a classifier that finds a known threshold, an objective that
stops a particle's return where it predicts the end, and a run that learns one on its
own (`--termination auto`), checkpoints it, evaluates and resumes with it."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from dynaplan.build import learns_termination
from dynaplan.config import config_from_values
from dynaplan.data.buffer import Split
from dynaplan.loop import resume, train
from dynaplan.models import Minibatches, fit
from dynaplan.models.fitting import FitPart, adam
from dynaplan.models.termination import TerminationModel, precision_recall
from dynaplan.objective import ModelObjective, termination_floor
from dynaplan.runs import load_agent
from dynaplan.types import Transitions

THRESHOLD = 0.8


def threshold_data(n: int, seed: int) -> Transitions:
    """1-D states in [-1, 1], s' = s + 0.2 a, terminated where s' > THRESHOLD (about 10%
    of the rows)."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(n, 1, generator=g) * 2 - 1
    action = torch.rand(n, 1, generator=g) * 2 - 1
    next_obs = obs + 0.2 * action
    return Transitions(obs, action, torch.zeros(n), next_obs, next_obs[:, 0] > THRESHOLD)


def fitted_threshold_model(epochs: int = 60) -> TerminationModel:
    torch.manual_seed(0)
    model = TerminationModel(1, 1, hidden=(32, 32))
    data = threshold_data(3000, seed=1)
    part = FitPart("termination", model, adam(model.parameters(), 3e-3), Minibatches(256))
    split = Split(train=np.arange(2400), valid=np.arange(2400, 3000))
    fit([part], data, split, epochs, torch.Generator().manual_seed(0))
    return model


def test_it_learns_a_threshold_termination_with_precision_and_recall_near_one():
    model = fitted_threshold_model()
    assert bool(model.fitted)
    held_out = threshold_data(4000, seed=2)
    predicted = model(held_out.obs, held_out.action, held_out.next_obs)
    assert predicted.dtype == torch.bool and predicted.shape == (4000,)
    precision, recall = precision_recall(predicted, held_out.terminated)
    assert held_out.terminated.float().mean() < 0.2  # rare: class balancing matters
    assert precision > 0.9 and recall > 0.95


def test_class_balancing_weighs_the_rare_terminations():
    model = TerminationModel(1, 1)
    data = threshold_data(1000, seed=3)
    x, y = model.examples(data)
    model.prepare(x, y, torch.arange(1000))
    positives = float(data.terminated.sum())
    assert model.pos_weight.item() == pytest.approx((1000 - positives) / positives)


def test_precision_and_recall_are_nan_where_undefined():
    none = torch.zeros(4, dtype=torch.bool)
    some = torch.tensor([True, False, True, False])
    assert all(np.isnan(v) for v in precision_recall(none, none))
    assert precision_recall(some, some) == (1.0, 1.0)
    assert precision_recall(torch.tensor([True, True, False, False]), some) == (0.5, 0.5)


def test_the_objective_stops_a_particles_return_at_the_predicted_termination():
    """s' = s + a from s = 0, reward 1 a step, the learned end at s' > 0.8: with a = 0.2
    every step the state passes 0.8 at the 5th step (s' = 1.0), so the return is 5 (the
    reward of the last step counts); with a = 0 it is the whole horizon."""
    model = fitted_threshold_model()
    model.eval()

    def dynamics(state, action):
        return state + action

    objective = ModelObjective(dynamics, lambda s, a, s2: torch.ones(s.shape[:-1]), model)
    actions = torch.stack([torch.full((10, 1), 0.2), torch.zeros(10, 1)])[None]  # [1, 2, 10, 1]
    returns = objective(torch.zeros(1, 1), actions)
    assert returns.tolist() == [[5.0, 10.0]]


def test_ending_the_episode_is_not_the_best_plan_where_rewards_are_negative():
    """The dynamics above with a reward of -1 a step: cut at 0 (the hard cut), walking
    into the end at the 5th step is the best plan (-5 against -10); with each cut-off step
    worth the data's floor (-2) it is the worst (-5 - 5 * 2 = -15)."""
    model = fitted_threshold_model()
    model.eval()

    def dynamics(state, action):
        return state + action

    def cost(s, a, s2):
        return -torch.ones(s.shape[:-1])

    actions = torch.stack([torch.full((10, 1), 0.2), torch.zeros(10, 1)])[None]
    obs = torch.zeros(1, 1)
    assert ModelObjective(dynamics, cost, model)(obs, actions).tolist() == [[-5.0, -10.0]]
    floor = termination_floor(torch.tensor([-2.0, -1.0, 3.0]))
    assert floor == -2.0
    valued = ModelObjective(dynamics, cost, model, termination_value=floor)
    assert valued(obs, actions).tolist() == [[-15.0, -10.0]]


def test_the_floor_is_never_above_zero():
    """Where every reward is positive, a termination is worth nothing (the hard cut)."""
    assert termination_floor(torch.tensor([1.0, 2.0])) == 0.0
    assert termination_floor(torch.tensor([])) == 0.0


class EdgeWalk(gym.Env):
    """x' = x + 0.1 a, reward 1 a step, the episode ends where |x'| > 0.3 (or after 40
    steps): a planner that knows nothing of the end walks off the edge; obs [x, 0]."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, render_mode=None, reward=1.0):
        self.render_mode, self.reward = render_mode, float(reward)
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.1, 0.1))
        return np.array([self.x, 0.0], np.float32), {}

    def step(self, action):
        self.x += 0.1 * float(np.clip(action[0], -1, 1))
        obs = np.array([self.x, 0.0], np.float32)
        return obs, self.reward, abs(self.x) > 0.3, False, {}


gym.register("DynaplanEdgeWalk-v0", entry_point=EdgeWalk, max_episode_steps=40)

SMALL = dict(env="DynaplanEdgeWalk-v0", iterations=2, steps_per_iteration=40,
             random_trajectories=3, epochs=3, horizon=4, num_sequences=16, num_iterations=2,
             num_elites=4, video_every=0, device="cpu", batch_size=64)


def test_auto_learns_a_termination_for_an_env_without_one(tmp_path):
    config = config_from_values(SMALL)
    assert config.model.termination == "auto" and learns_termination(config)
    result = train(config, tmp_path / "run", progress=False, echo=lambda s: None)
    assert result.summary["termination"] == "learned"
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    last = dict(zip(header, rows[-1].split(","), strict=True))
    assert 0.0 <= float(last["model/termination_recall"]) <= 1.0
    assert (tmp_path / "run" / "plots" / "diagnostics.png").is_file()
    loaded = load_agent(tmp_path / "run", "cpu")
    assert loaded.agent.planner.objective.termination is not None  # eval plans with it


def test_a_run_with_a_learned_termination_resumes_to_the_same_metrics(tmp_path):
    config = config_from_values({**SMALL, "iterations": 3})
    train(config, tmp_path / "whole", progress=False, echo=lambda s: None)
    train(config_from_values({**SMALL, "iterations": 2}), tmp_path / "parts", progress=False,
          echo=lambda s: None)
    resume(tmp_path / "parts", config, progress=False, echo=lambda s: None)

    def rows(name):
        lines = (tmp_path / name / "metrics.csv").read_text().splitlines()
        header = lines[0].split(",")
        return [{k: v for k, v in zip(header, line.split(","), strict=True)
                 if not k.startswith("time/")} for line in lines[1:]]

    assert rows("parts") == rows("whole")


def test_none_and_learned_are_honoured(tmp_path):
    assert not learns_termination(config_from_values({**SMALL, "termination": "none"}))
    assert learns_termination(config_from_values({"env": "InvertedPendulum-v5",
                                                  "termination": "learned"}))
    assert not learns_termination(config_from_values({"env": "InvertedPendulum-v5"}))
    result = train(config_from_values({**SMALL, "termination": "none", "iterations": 1}),
                   tmp_path / "none", progress=False, echo=lambda s: None)
    assert result.summary["termination"] == "none"
    summary = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert summary["termination"] == "none"


def test_a_run_values_a_termination_at_its_datas_floor_and_eval_does_too(tmp_path,
                                                                         monkeypatch):
    """EdgeWalk at -1 a step, `--termination-value floor`: training plans with -1 per
    cut-off step (the floor of the data's rewards, after every fit), so does `eval`; the
    default, zero, is the hard cut."""
    seen = []
    monkeypatch.setattr("dynaplan.build.termination_floor",
                        lambda r: seen.append(r.clone()) or termination_floor(r))
    values = {**SMALL, "iterations": 2, "env_kwargs": {"reward": -1.0},
              "termination_value": "floor"}
    train(config_from_values(values), tmp_path / "floor", progress=False, echo=lambda s: None)
    assert len(seen) >= 2 and all(bool((r == -1.0).all()) for r in seen)  # every fit's data
    assert load_agent(tmp_path / "floor", "cpu").agent.planner.objective.termination_value \
        == -1.0
    assert config_from_values({}).model.termination_value == "zero"
    train(config_from_values({**values, "termination_value": "zero"}), tmp_path / "zero",
          progress=False, echo=lambda s: None)
    assert load_agent(tmp_path / "zero", "cpu").agent.planner.objective.termination_value \
        == 0.0
