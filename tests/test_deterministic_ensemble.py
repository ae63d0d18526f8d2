"""A model type added through the seams alone (models/deterministic_ensemble.py, one line in
build.DYNAMICS): it fits a known system through the one `fit`, plans through the
reference rollout (no accelerator knows it), and a run with it trains, resumes and
evaluates like any other."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY
from objectives import objective, reference
from test_cli import read_rows

from dynaplan import accel
from dynaplan.app.cli import main
from dynaplan.data import ReplayBuffer
from dynaplan.models import Bootstrap, DeterministicEnsemble, EnsembleDynamics, FitPart, fit

A_MAT = np.array([[0.9, 0.2], [-0.1, 0.95]], np.float32)
B_MAT = np.array([[0.0], [0.5]], np.float32)
MEMBERS = ["--dynamics", "deterministic-ensemble", "--ensemble-size", "3", "--particles", "3",
           "--ensemble-hidden", "16", "--ensemble-layers", "2", "--propagation", "tsinf",
           "--ensemble-batch-size", "32"]


def linear_data(n, seed=0):
    rng = np.random.default_rng(seed)
    buf = ReplayBuffer(2, 1, capacity=n)
    s = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    for row in range(n):
        buf.add(s[row], a[row], 0.0, s[row] @ A_MAT.T + a[row] @ B_MAT.T)
    return buf


def test_it_fits_a_known_linear_system_and_keeps_its_best_members():
    torch.manual_seed(0)
    buf = linear_data(1500)
    ens = DeterministicEnsemble(3, 2, members=4, hidden=(32, 32), keep=2)
    part = FitPart("dynamics", ens, torch.optim.Adam(ens.parameters(), lr=3e-3),
                   Bootstrap(4, 64))
    split = buf.split(0.2, np.random.default_rng(0))
    result = fit([part], buf.tensors(), split, 40, torch.Generator().manual_seed(0))
    assert result.valid["dynamics"] < 0.01 and len(ens.elites) == 2
    dyn = EnsembleDynamics(ens, "tsinf", 2, sample=False)
    test = linear_data(200, seed=9)
    s, a = torch.as_tensor(test.obs), torch.as_tensor(test.action)
    pred = dyn(s, a)  # 2 rows a member
    assert torch.mean((pred - torch.as_tensor(test.next_obs)) ** 2) < 1e-3


@pytest.mark.parametrize("propagation", ["tsinf", "ts1", "expectation"])
def test_it_plans_on_the_reference_path_for_every_kernel_that_runs_it(propagation):
    torch.manual_seed(0)
    ens = DeterministicEnsemble(3, 2, members=3, hidden=(8,)).eval()
    particles = 1 if propagation == "expectation" else 3

    def dyn():
        return EnsembleDynamics(ens, propagation, particles, sample=False,
                                generator=torch.Generator().manual_seed(1))

    def reward(s, a, s2):
        return -(s2 ** 2).sum(-1)

    for kernel in ("auto", "torch"):
        assert objective(dyn(), reward, kernel=kernel).kernel == "reference"
    for kernel in ("native", "triton"):
        with pytest.raises(ValueError, match="does not run a DeterministicEnsemble"):
            accel.select_rollout(kernel, dyn(), reward, None)
    if propagation == "expectation":  # no draws: the step-by-step definition itself
        obs, actions = torch.randn(2, 2), torch.rand(2, 4, 5, 1)
        torch.testing.assert_close(objective(dyn(), reward)(obs, actions),
                                   reference(dyn(), reward, None, obs, actions))


def test_a_run_with_it_trains_resumes_and_evaluates(tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", *TINY, *MEMBERS, "--iterations", "3", "--out", str(full)]) == 0
    summary = json.loads((full / "summary.json").read_text())
    assert summary["rollout_kernel"] == "reference"
    assert main(["train", *TINY, *MEMBERS, "--iterations", "2", "--out", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--iterations", "3", "--quiet"]) == 0
    assert read_rows(part / "metrics.csv") == read_rows(full / "metrics.csv")
    capsys.readouterr()
    assert main(["eval", str(full), "--episodes", "1", "--json", "--device", "cpu"]) == 0
    assert len(json.loads(capsys.readouterr().out)["returns"]) == 1
