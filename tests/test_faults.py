"""Faults during a run: an environment that raises or returns NaN costs only its episode;
a model that diverges stops the run with one line and leaves the last good checkpoint."""

import csv
import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import TINY

from dynaplan import loop
from dynaplan.app.cli import main
from dynaplan.checkpoint import list_checkpoints
from dynaplan.checkpoint_read import read_checkpoint

ENV_ID = "DynaplanFaultyPoint-v0"
EPISODE_STEPS = 20
FAULTS: dict[tuple[int, int], tuple[str, int]] = {}
"""(instance, episode) -> (kind, step): instance k is the k-th env made in the test (the
training env first, then evaluation envs); kind is "raise", "nan_obs", "nan_reward",
"reset", "wrong_shape", "text_obs", "text_reward", "array_reward" or "bad_flag"."""


class FaultyPoint(gym.Env):
    """A 1-D point mass (obs [x, v], action [force] in [-1, 1], reward -x^2) that fails
    where FAULTS says."""

    instances = 0

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.instance, FaultyPoint.instances = FaultyPoint.instances, FaultyPoint.instances + 1
        self.episode, self.t = -1, 0
        self.state = np.zeros(2, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        if self._fault() == ("reset", 0):
            raise RuntimeError("reset failed on purpose")
        self.state = np.array([self.np_random.uniform(-1, 1), 0.0], np.float32)
        return self.state.copy(), {}

    def step(self, action):
        kind = self._fault()
        x, v = self.state
        v = v + 0.1 * float(np.clip(action, -1, 1)[0])
        self.state = np.array([x + v, v], np.float32)
        obs, reward = self.state.copy(), -float(x) ** 2
        if kind == ("raise", self.t):
            raise RuntimeError("simulator exploded\nsecond line of the message")
        if kind == ("nan_obs", self.t):
            obs[0] = np.nan
        if kind == ("nan_reward", self.t):
            reward = float("nan")
        terminated: object = False
        if kind == ("wrong_shape", self.t):
            obs = np.zeros(3, np.float32)
        if kind == ("text_obs", self.t):
            obs = ["left", "right"]
        if kind == ("text_reward", self.t):
            reward = "a lot"
        if kind == ("array_reward", self.t):
            reward = np.ones(2)
        if kind == ("bad_flag", self.t):
            terminated = "no"
        self.t += 1
        return obs, reward, terminated, False, {}

    def _fault(self):
        return FAULTS.get((self.instance, self.episode))


@pytest.fixture(autouse=True)
def faulty_env():
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=FaultyPoint, max_episode_steps=EPISODE_STEPS)
    FaultyPoint.instances = 0
    FAULTS.clear()
    yield
    FAULTS.clear()


def point_flags(tmp_path, *extra):
    return ["train", *TINY, "--env", ENV_ID, "--random-trajectories", "2",
            "--steps-per-iteration", "1", *extra, "--out", str(tmp_path / "run")]


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_faulty_episodes_are_dropped_and_the_run_goes_on(tmp_path, capsys):
    FAULTS.update({
        (0, 1): ("raise", 5),        # a random episode: exception in step
        (0, 3): ("nan_obs", 7),      # iteration 0's first planned episode: NaN observation
        (0, 5): ("nan_reward", 0),   # iteration 1's first planned episode: NaN reward
        (0, 6): ("reset", 0),        # and then a failing reset
    })
    assert main(point_flags(tmp_path)) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "dropped an episode" in line]
    assert len(warnings) == 4, err
    assert "RuntimeError: simulator exploded" in warnings[0]
    assert "second line" not in err and "Traceback" not in err
    assert "non-finite observation" in warnings[1] and "non-finite" in warnings[2]
    assert "reset raised" in warnings[3]

    run = tmp_path / "run"
    rows = read_csv(run / "metrics.csv")
    # 2 kept random episodes + 1 kept planned episode per iteration, 20 steps each
    assert [int(r["env_steps"]) for r in rows] == [60, 80]
    assert [int(r["train/dropped_episodes"]) for r in rows] == [1, 2]
    assert [int(r["train/episodes"]) for r in rows] == [1, 1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dropped_episodes"] == 4
    buffer = read_checkpoint(list_checkpoints(run / "checkpoints")[-1]).buffer
    assert len(buffer) == 80  # the data so far is kept, the broken episodes' is not
    for name in ("obs", "action", "reward", "next_obs"):
        assert np.isfinite(getattr(buffer, name)).all()


@pytest.mark.parametrize("kind, words", [
    ("wrong_shape", "an observation of shape (3,), not (2,)"),
    ("text_obs", "an observation that is not numbers"),
    ("text_reward", "a reward that is not a number"),
    ("array_reward", "a reward that is not a number"),
    ("bad_flag", "a terminated flag that is not a bool"),
])
def test_malformed_steps_drop_their_episode_in_one_line(kind, words, tmp_path, capsys):
    FAULTS.update({(0, 1): (kind, 4), (0, 3): (kind, 2)})  # a random and a planned episode
    assert main(point_flags(tmp_path)) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "dropped an episode" in line]
    assert len(warnings) == 2 and all(words in w for w in warnings), err
    assert "Traceback" not in err
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["env_steps"]) for r in rows] == [60, 80]


def test_failing_evaluation_episode_is_left_out_of_the_mean(tmp_path, capsys):
    FAULTS.update({(1, 0): ("raise", 3), (1, 1): ("reset", 0)})  # eval env 0, both iterations
    assert main(point_flags(tmp_path, "--eval-episodes", "2")) == 0
    err = capsys.readouterr().err
    assert err.count("evaluation episode 0") == 2, err
    for r in read_csv(tmp_path / "run" / "metrics.csv"):
        # only env 1 is left: mean == min == max, and a number
        assert math.isfinite(float(r["eval/return"]))
        assert float(r["eval/return"]) == float(r["eval/return_min"]) == float(
            r["eval/return_max"])


def test_an_environment_that_always_fails_stops_the_run(tmp_path, capsys):
    FAULTS.update({(0, k): ("raise", 2) for k in range(2, 40)})
    assert main(point_flags(tmp_path)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "failed in 10 episodes in a row" in lines[-1]
    assert lines[-1].startswith("dynaplan: error:")


def test_diverging_model_stops_with_one_line(tmp_path, capsys):
    assert main(point_flags(tmp_path, "--lr", "1e30")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "model fit diverged at iteration 0" in err and "no checkpoint" in err


def test_diverging_model_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    real_fit = loop.fit
    calls = []

    def fit_that_diverges_the_second_time(parts, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            for part in parts:
                for group in part.optimizer.param_groups:
                    group["lr"] = 1e30
        return real_fit(parts, *args, **kwargs)

    monkeypatch.setattr(loop, "fit", fit_that_diverges_the_second_time)
    assert main(point_flags(tmp_path, "--iterations", "3")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model fit diverged at iteration 1" in err
    run = tmp_path / "run"
    assert "iter_000000" in err
    checkpoints = list_checkpoints(run / "checkpoints")
    assert [p.name for p in checkpoints] == ["iter_000000"]
    kept = read_checkpoint(checkpoints[0])
    for tensor in kept.tensors["dynamics"].values():
        if tensor.is_floating_point():
            assert torch.isfinite(tensor).all()
    assert [r["iteration"] for r in read_csv(run / "metrics.csv")] == ["0"]
    assert not (run / "summary.json").exists()
