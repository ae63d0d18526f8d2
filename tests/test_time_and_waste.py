"""What a run's time is spent on: its evaluation timed apart (`time/eval_s`), its wall time
without evaluation (`time/wall_s`, the time to solve reads from it), and no fit of a
model the planner does not use (the reward model under a known reward)."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY
from test_cli import main_config

from dynaplan.app.cli import main
from dynaplan.build import build_fit_parts, build_models, learns_reward
from dynaplan.data import ReplayBuffer
from dynaplan.envs import make_env
from dynaplan.metrics import read_metrics
from dynaplan.models import fit


def test_evaluation_is_timed_apart_and_the_wall_time_leaves_it_out(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--iterations", "3", "--eval-episodes", "1",
                 "--eval-every", "2", "--out", str(out)]) == 0
    m = read_metrics(out / "metrics.csv")
    evaluated = [math.isfinite(v) for v in m["eval/return"]]
    assert evaluated == [False, True, True]  # every 2nd iteration and the last
    eval_s = m["time/eval_s"]
    assert [v > 0 for v in eval_s] == evaluated
    wall = m["time/wall_s"]
    assert all(b > a for a, b in zip(wall, wall[1:])) and wall[0] > 0
    # an iteration's wall time grows by its own time without its evaluation, give or take
    # the checkpoint and figures written between two iterations
    for k in (1, 2):
        assert wall[k] - wall[k - 1] >= m["time/iteration_s"][k] - eval_s[k] - 1e-6
    # the run's own wall time is the wall time without evaluation plus the evaluation
    summary = json.loads((out / "summary.json").read_text())
    assert summary["wall_s"] >= wall[-1] + sum(eval_s) - 1e-6


def test_a_resumed_run_counts_on_from_its_checkpoint(tmp_path):
    out = tmp_path / "run"
    flags = [*TINY, "--eval-episodes", "1", "--out", str(out)]
    assert main(["train", *flags, "--iterations", "1"]) == 0
    before = read_metrics(out / "metrics.csv")["time/wall_s"]
    assert main(["train", "--resume", str(out), "--iterations", "3", "--quiet"]) == 0
    wall = read_metrics(out / "metrics.csv")["time/wall_s"]
    assert wall[0] == before[0] and wall[1] > wall[0] and wall[2] > wall[1]


def test_the_reward_model_is_fitted_only_where_the_planner_plans_with_it():
    assert learns_reward(main_config(TINY))
    for reward in ("known", "tests.user_fns:good_reward"):
        assert not learns_reward(main_config([*TINY, "--reward", reward])), reward


def _fit_once(argv):
    """The dynamics and reward models after one fit of `argv`'s parts on 300 random
    Pendulum-v1 transitions, and what the fit reported."""
    config = main_config(argv)
    env, spec = make_env("Pendulum-v1")
    buffer = ReplayBuffer(spec.obs_dim, spec.action_dim)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for _ in range(300):
        action = rng.uniform(-2, 2, size=1).astype(np.float32)
        nxt, reward, term, trunc, _ = env.step(action)
        buffer.add(obs, action, reward, nxt, term, trunc)
        obs = nxt
    torch.manual_seed(0)
    dynamics, reward_model = build_models(spec, torch.device("cpu"), config)
    start = {k: v.clone() for k, v in reward_model.state_dict().items()}
    result = fit(build_fit_parts(config, dynamics, reward_model), buffer.tensors(),
                 buffer.split(0.2, np.random.default_rng(0)), 3, torch.Generator().manual_seed(0))
    return dynamics, reward_model, start, result


@pytest.mark.parametrize("model", [[], ["--preset", "pets", "--ensemble-hidden", "8",
                                        "--epochs", "3"]])
def test_an_unused_reward_model_is_not_trained_and_the_dynamics_fit_is_the_same(model):
    learned = _fit_once([*TINY, *model, "--reward", "learned"])
    known = _fit_once([*TINY, *model, "--reward", "known"])
    assert "reward" in learned[3].train and "reward" not in known[3].train
    assert "reward" not in known[3].valid
    _, reward_model, start, _ = known
    assert all(torch.equal(v, start[k]) for k, v in reward_model.state_dict().items())
    assert not all(torch.equal(v, learned[2][k])
                   for k, v in learned[1].state_dict().items())
    # the reward model's batches are still drawn: the dynamics model sees the same ones
    for a, b in zip(learned[0].state_dict().values(), known[0].state_dict().values()):
        assert torch.equal(a, b)
    assert learned[3].train["dynamics"] == known[3].train["dynamics"]


def test_under_a_known_reward_the_predicted_return_is_the_known_rewards(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--reward", "known", "--steps-per-iteration", "30",
                 "--out", str(out)]) == 0
    m = read_metrics(out / "metrics.csv")
    assert all(math.isnan(v) for v in m["model/reward_train_loss"] + m["model/reward_valid_loss"])
    for observed, predicted in zip(m["train/return"], m["train/predicted_return"]):
        assert predicted == pytest.approx(observed, rel=1e-4)
    assert all(v < 1e-3 for v in m["model/reward_rmse"])
