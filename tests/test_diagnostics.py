"""The diagnostics a run writes, on a linear system whose errors are known in closed form,
and in a real run's metrics.csv."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from dynaplan.config import config_from_values
from dynaplan.data import ReplayBuffer
from dynaplan.diagnostics import (
    COLUMNS,
    Segment,
    diagnose,
    open_loop_errors,
    planner_returns,
    reward_rmse,
)
from dynaplan.loop import train


def linear_buffer(lengths, terminated_last=False):
    """Episodes of s' = s + a (1-D, a = 1 every step, s_0 = 0), reward = s'."""
    buffer = ReplayBuffer(1, 1)
    segments = []
    for n in lengths:
        start = len(buffer)
        for t in range(n):
            done = terminated_last and t == n - 1
            buffer.add([float(t)], [1.0], float(t + 1), [float(t + 1)], done, False)
        segments.append(Segment(start, len(buffer), np.full(n, np.nan)))
    return buffer, segments


class Offset:
    """The model s' = s + a + d: after k open-loop steps it is off by k d."""

    particles = 1

    def __init__(self, d):
        self.d = d

    def __call__(self, state, action):
        return state + action + self.d


def test_the_open_loop_error_grows_as_the_known_drift():
    buffer, segments = linear_buffer([12, 8])
    scale = np.array([2.0])
    errors = open_loop_errors(Offset(0.1), buffer, segments, (1, 5, 10), scale,
                              torch.device("cpu"))
    for k in (1, 5, 10):  # |k d| / scale, whatever the start
        assert errors[k] == pytest.approx(k * 0.1 / 2.0, rel=1e-5)
    exact = open_loop_errors(Offset(0.0), buffer, segments, (1, 5), scale, torch.device("cpu"))
    assert exact == {1: 0.0, 5: 0.0}
    # no start has 20 steps left in an episode of at most 12
    assert np.isnan(open_loop_errors(Offset(0.1), buffer, segments, (20,), scale,
                                     torch.device("cpu"))[20])


def test_particles_are_averaged():
    class Noisy(Offset):
        particles = 2

        def __call__(self, state, action):  # particle 0 off by +d, particle 1 by -d
            sign = torch.tensor([1.0, -1.0]).repeat(state.shape[0] // 2)[:, None]
            return state + action + sign * self.d

    buffer, segments = linear_buffer([6])
    errors = open_loop_errors(Noisy(0.5), buffer, segments, (1, 3), np.array([1.0]),
                              torch.device("cpu"))
    assert errors == {1: pytest.approx(0.5), 3: pytest.approx(1.5)}


def test_reward_error_and_the_planners_gap():
    buffer, segments = linear_buffer([10])
    assert reward_rmse(lambda s, a, s2: s2[..., 0] + 0.3, buffer, segments,
                       torch.device("cpu")) == pytest.approx(0.3, rel=1e-5)
    # planned 100 at each step; the real 3-step return from s_t is (t+1)+(t+2)+(t+3)
    seg = Segment(0, 10, np.full(10, 100.0))
    predicted, real = planner_returns(buffer, [seg], horizon=3)
    assert predicted == 100.0
    assert real == pytest.approx(np.mean([3 * t + 6 for t in range(8)]))  # 8 full windows


def test_a_terminated_episode_counts_its_last_steps():
    buffer, _ = linear_buffer([4], terminated_last=True)
    seg = Segment(0, 4, np.zeros(4))
    _, real = planner_returns(buffer, [seg], horizon=3)
    # windows from t = 0..3: 1+2+3, 2+3+4, 3+4, 4 (nothing follows the termination)
    assert real == pytest.approx(np.mean([6, 9, 7, 4]))


def test_diagnose_gives_every_column():
    buffer, segments = linear_buffer([5, 7])
    out = diagnose(Offset(0.0), lambda s, a, s2: s2[..., 0], buffer, segments[1:], 3,
                   torch.device("cpu"))
    assert set(out) == set(COLUMNS)
    assert out["model/open_loop_error_1"] == 0.0 and out["model/reward_rmse"] == 0.0
    assert np.isnan(out["model/termination_recall"])


def test_a_run_writes_the_diagnostics(tmp_path):
    config = config_from_values(dict(iterations=2, steps_per_iteration=50, random_trajectories=1,
                                     epochs=2, horizon=5, num_sequences=16, num_iterations=2,
                                     num_elites=4, video_every=0, device="cpu"))
    train(config, tmp_path / "run", progress=False, echo=lambda s: None)
    with open(tmp_path / "run" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in ("model/open_loop_error_1", "model/open_loop_error_5",
                    "model/open_loop_error_h", "model/reward_rmse",
                    "planner/predicted_return", "planner/real_return", "planner/return_gap"):
            assert np.isfinite(float(row[key])), key
        assert float(row["model/open_loop_error_1"]) < float(row["model/open_loop_error_h"])
        gap = float(row["planner/predicted_return"]) - float(row["planner/real_return"])
        assert float(row["planner/return_gap"]) == pytest.approx(gap)
        assert row["model/termination_recall"] == "nan"  # Pendulum never terminates
    assert (tmp_path / "run" / "plots" / "diagnostics.png").stat().st_size > 10_000
