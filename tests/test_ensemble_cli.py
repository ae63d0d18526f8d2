"""PETS from the command line: `--dynamics ensemble` trains, evaluates, resumes exactly,
and refuses inconsistent options in one line."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import TINY
from test_cli import read_rows
from test_resume import assert_same_run, newest, run_bad

from dynaplan.accel.native_rollout import unavailable as native_unavailable
from dynaplan.app.cli import main
from dynaplan.build import build_fit_parts, build_models, build_objective
from dynaplan.config import config_from_values
from dynaplan.envs import known_termination, make_env
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.runs import load_run_config

ENSEMBLE = ["--dynamics", "ensemble", "--ensemble-size", "2", "--particles", "4",
            "--ensemble-hidden", "16", "--ensemble-layers", "2"]
# three members, the best two of which plan: exercises the kept-members buffer
KEEP = [*TINY, "--dynamics", "ensemble", "--ensemble-size", "3", "--keep-members", "2",
        "--particles", "4", "--ensemble-hidden", "16", "--ensemble-layers", "2",
        "--eval-episodes", "1", "--seed", "3"]


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ens") / "run"
    assert main(["train", *TINY, *ENSEMBLE, "--seed", "5", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory):
    """Three iterations with two of three members kept (the resume reference)."""
    out = tmp_path_factory.mktemp("keep") / "run"
    assert main(["train", *KEEP, "--iterations", "3", "--out", str(out)]) == 0
    return out


def test_ensemble_run_writes_metrics_and_checkpoints_the_ensemble(ensemble_run):
    assert load_run_config(ensemble_run).model.dynamics == "ensemble"
    rows = read_rows(ensemble_run / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [0, 1]
    for r in rows:
        for key in ("model/dynamics_train_loss", "model/dynamics_valid_loss",
                    "model/reward_train_loss", "train/return"):
            assert np.isfinite(float(r[key])), key
    saved = newest(ensemble_run).tensors
    assert saved["dynamics"]["hidden_layers.0.weight"].shape == (2, 3 + 1, 16)  # [E, I, w]
    assert "elites" in saved["dynamics"] and "input_norm.mean" in saved["dynamics"]
    # the ensemble's Adam state is checkpointed next to the reward model's
    ensemble_state, reward_state = saved["optimizers"]
    assert len(ensemble_state["state"]) == len(list(GaussianEnsemble(4, 3, 2, (16, 16))
                                                    .parameters()))
    assert len(reward_state["state"]) > 0


def test_same_seed_same_ensemble_metrics(ensemble_run, tmp_path):
    again = tmp_path / "again"
    assert main(["train", *TINY, *ENSEMBLE, "--seed", "5", "--out", str(again)]) == 0
    assert read_rows(again / "metrics.csv") == read_rows(ensemble_run / "metrics.csv")
    assert (again / "episodes.csv").read_text() == (ensemble_run / "episodes.csv").read_text()


def _last_json(text):
    return json.loads(text[text.index("{"):])


def test_eval_reports_the_ensemble_checkpoint(kept_run, capsys):
    assert main(["eval", str(kept_run), "--episodes", "1", "--json", "--device", "cpu"]) == 0
    result = _last_json(capsys.readouterr().out)
    assert result["checkpoint_iteration"] == 2 and np.isfinite(result["return_mean"])


def test_killed_ensemble_run_resumes_to_the_same_result(kept_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(kept_run, run)
    # as if killed during iteration 2: its checkpoint and summary never got written
    shutil.rmtree(run / "checkpoints" / "iter_000002")
    (run / "summary.json").unlink()
    assert main(["train", *KEEP, "--iterations", "3", "--resume", str(run)]) == 0
    assert_same_run(run, kept_run)


def test_extended_ensemble_run_equals_an_uninterrupted_one(kept_run, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *KEEP, "--iterations", "2", "--out", str(run)]) == 0
    assert main(["train", *KEEP, "--iterations", "3", "--resume", str(run)]) == 0
    assert_same_run(run, kept_run)


def test_known_termination_with_an_ensemble(tmp_path):
    out = tmp_path / "mc"
    assert main(["train", *TINY, *ENSEMBLE, "--iterations", "1",
                 "--env", "MountainCarContinuous-v0", "--termination", "known",
                 "--out", str(out)]) == 0
    assert [int(r["env_steps"]) for r in read_rows(out / "metrics.csv")] == [1998]


@pytest.mark.parametrize("propagation", ["ts1", "tsinf", "expectation"])
@pytest.mark.parametrize("termination", ["none", "known"])
def test_built_objective_plans_through_the_kept_members(propagation, termination):
    config = config_from_values(dict(
        env="MountainCarContinuous-v0", dynamics="ensemble", ensemble_size=3, keep_members=2,
        particles=4, propagation=propagation, ensemble_hidden=8, ensemble_layers=1,
        termination=termination, device="cpu"))
    _, spec = make_env(config.env)
    dynamics, reward = build_models(spec, torch.device("cpu"), config)
    assert isinstance(dynamics, GaussianEnsemble) and dynamics.elites.tolist() == [0, 1]
    assert [p.name for p in build_fit_parts(config, dynamics, reward)] == ["reward", "dynamics"]
    objective = build_objective(config, dynamics, reward, torch.Generator().manual_seed(0))
    assert objective.particles == 4
    assert objective.termination is (known_termination(config.env) if termination == "known"
                                     else None)
    returns = objective(torch.zeros(2, 2), torch.zeros(2, 5, 3, 1))
    assert returns.shape == (2, 5) and bool(torch.isfinite(returns).all())
    # rollout_kernel auto: the native kernel propagates by tsinf where it builds
    native = propagation == "tsinf" and native_unavailable() is None
    assert objective.kernel == ("native" if native else "torch")


@pytest.mark.parametrize(("args", "words"), [
    (["--dynamics", "ensemble", "--ensemble-size", "2", "--particles", "3"],
     "particles (3) must be a multiple of the kept ensemble members (2)"),
    (["--dynamics", "ensemble", "--ensemble-size", "2", "--keep-members", "3"],
     "keep_members (3) must not exceed ensemble_size (2)"),
    (["--termination", "known"], "Pendulum-v1 has no known termination"),
    (["--dynamics", "ensemble", "--ensemble-layers", "0"], "ensemble_layers must be positive"),
])
def test_inconsistent_ensemble_options_are_one_line(args, words, tmp_path, capsys):
    err = run_bad(["train", *TINY, *args, "--out", str(tmp_path / "bad")], capsys)
    assert words in err
    assert not (tmp_path / "bad").exists()
