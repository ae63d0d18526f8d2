import numpy as np
import pytest

from dynaplan.data import ReplayBuffer
from dynaplan.errors import ConfigError


def filled(n):
    buf = ReplayBuffer(3, 1, capacity=2)
    for i in range(n):
        buf.add(np.full(3, i), [i / 10], -i, np.full(3, i + 1), i % 7 == 0, i % 5 == 0)
    return buf


def test_buffer_grows_and_keeps_order():
    buf = filled(100)
    assert len(buf) == 100
    assert buf.obs.shape == (100, 3) and buf.action.shape == (100, 1)
    assert np.array_equal(buf.reward, -np.arange(100))
    assert np.array_equal(buf.next_obs[:, 0], np.arange(1, 101))
    assert buf.terminated.sum() == len(range(0, 100, 7))


def test_split_is_a_seeded_shuffled_partition():
    buf = filled(101)
    a = buf.split(0.2, np.random.default_rng(3))
    b = buf.split(0.2, np.random.default_rng(3))
    c = buf.split(0.2, np.random.default_rng(4))
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)
    assert len(a.valid) == 20 and len(a.train) == 81
    assert sorted(np.concatenate([a.train, a.valid]).tolist()) == list(range(101))
    assert not np.array_equal(np.sort(a.train), a.train)  # shuffled


def test_save_load_round_trip(tmp_path):
    buf = filled(33)
    buf.save(tmp_path / "b.npz")
    back = ReplayBuffer.load(tmp_path / "b.npz")
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        assert np.array_equal(getattr(buf, name), getattr(back, name))
    back.add(np.zeros(3), [0.0], 0.0, np.zeros(3))  # still growable
    assert len(back) == 34


def test_load_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        ReplayBuffer.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ConfigError, match="unreadable"):
        ReplayBuffer.load(bad)
