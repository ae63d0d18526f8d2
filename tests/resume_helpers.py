"""A reference run and what comparing runs with it takes (the resume and fault tests)."""

import csv
import json
import os
import shutil
import signal

import numpy as np
import torch
from conftest import TINY

from dynaplan import loop
from dynaplan.checkpoint import list_checkpoints
from dynaplan.checkpoint_read import read_checkpoint

ARGS = [*TINY, "--iterations", "4", "--eval-episodes", "1", "--seed", "7"]


def metrics(run, drop_timing=True):
    with open(run / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if not (drop_timing and k.startswith("time/"))}
                for r in csv.DictReader(fh)]


def newest(run):
    found = list_checkpoints(run / "checkpoints")
    return read_checkpoint(found[-1]) if found else None


def assert_same_run(run, reference):
    """Same metrics (timing aside), episodes, weights, optimizer states and data."""
    assert metrics(run) == metrics(reference)
    assert (run / "episodes.csv").read_text() == (reference / "episodes.csv").read_text()
    got, want = newest(run), newest(reference)
    assert got.iteration == want.iteration
    for name in ("dynamics", "reward"):
        assert got.tensors[name].keys() == want.tensors[name].keys()
        for key, tensor in want.tensors[name].items():
            assert torch.equal(got.tensors[name][key], tensor), (name, key)
    for mine, theirs in zip(got.tensors["optimizers"], want.tensors["optimizers"]):
        for index, state in theirs["state"].items():
            for key, tensor in state.items():
                assert torch.equal(mine["state"][index][key], tensor), (index, key)
    assert np.array_equal(got.buffer.obs, want.buffer.obs)
    assert json.loads((run / "summary.json").read_text())["env_steps"] == len(want.buffer)
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def copy_run(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    return run


def ctrl_c_in_iteration(monkeypatch, iteration):
    """Send this process SIGINT when a run starts acting in `iteration` (after that
    iteration's fit), as Ctrl-C would."""
    real, calls = loop.run_episodes, []

    def run_episodes_with_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == iteration + 1:  # the iteration's own episodes, after its fit
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "run_episodes", run_episodes_with_ctrl_c)
