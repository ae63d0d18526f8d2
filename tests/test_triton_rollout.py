"""The Triton rollout kernel computes what the dynamics MLP (or a TS-inf ensemble) computes
step by step, and the objective built on it returns what the torch path returns. Without
a GPU the kernel runs in Triton's interpreter (conftest.py sets TRITON_INTERPRET): the
same kernel source, its arithmetic and indexing, on CPU tensors. Its compiled form runs
in test_cuda_paths.py."""

import json
import shutil

import pytest
import torch
from conftest import TINY, TINY_NO_DEVICE
from test_fused_ensemble import random_ensemble
from test_fused_ensemble import reward as ensemble_reward
from test_objective_paths import (
    _bn_models,
    assert_cem_plans_agree,
    assert_ensemble_cem_agrees,
    assert_ensemble_returns_agree,
    assert_refuses_missing_noise,
    known_reward,
    leaves_box,
    reference,
    step_by_step,
)

from dynaplan.cli import main
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.fused import FusedMLPs
from dynaplan.models.fused_ensemble import FusedEnsemble
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.planners import ModelObjective

pytest.importorskip("triton")
needs_interpreter = pytest.mark.skipif(
    torch.cuda.is_available(), reason="the CPU tests interpret the kernel; a GPU compiles it")

from dynaplan.models.triton_rollout import TritonRollout, unavailable  # noqa: E402

SMALL = (32, 24)
"""Hidden sizes of the seed's BatchNorm networks, cut down: the interpreter runs a tile at a
time in numpy, and the seed's 512 x 256 layer takes it seconds a step."""


@needs_interpreter
@pytest.mark.parametrize("obs_dim, act_dim, net", [
    (3, 1, dict(hidden=(40, 40, 40), batch_norm=False, activation="silu")),
    (3, 1, dict(hidden=(48, 24), batch_norm=True, activation="relu")),  # widths padded
    (5, 2, dict(hidden=(20,), batch_norm=False, activation="relu")),  # no hidden-to-hidden
])
def test_kernel_states_equal_the_step_by_step_rollout(obs_dim, act_dim, net):
    dyn, _ = _bn_models(obs_dim, act_dim, **net)
    state = torch.randn(37, obs_dim)  # 37 rows: the last program's rows are partly masked
    actions = torch.rand(37, 6, act_dim) * 4 - 2
    got = TritonRollout(FusedMLPs([dyn]), obs_dim)(state, actions)
    want = step_by_step(dyn, state, actions)
    assert got.shape == (37, 7, obs_dim)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@needs_interpreter
@pytest.mark.parametrize("block, block_m", [(16, 16), (64, 32)])
def test_kernel_tiles_change_nothing_but_speed(block, block_m):
    dyn, _ = _bn_models(hidden=(40, 40), batch_norm=False, activation="silu")
    state, actions = torch.randn(21, 3), torch.rand(21, 4, 1) * 4 - 2
    got = TritonRollout(FusedMLPs([dyn]), 3, block=block, block_m=block_m)(state, actions)
    torch.testing.assert_close(got, step_by_step(dyn, state, actions), rtol=1e-5, atol=1e-5)


@needs_interpreter
@pytest.mark.parametrize("reward, termination", [
    ("learned", None), ("learned", leaves_box), ("known", None), ("known", leaves_box)])
def test_objective_on_the_kernel_returns_the_definition(reward, termination):
    dyn, rew = _bn_models(hidden=SMALL)
    rew = rew if reward == "learned" else known_reward
    obs, actions = torch.randn(2, 3) * 0.3, torch.rand(2, 20, 7, 1) * 4 - 2
    got = ModelObjective(dyn, rew, termination, kernel="triton")(obs, actions)
    want = reference(dyn, rew, termination, obs, actions)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@needs_interpreter
def test_cem_plans_the_same_on_the_kernel():
    dyn, rew = _bn_models(hidden=SMALL)
    objectives = [ModelObjective(dyn, rew, kernel=kernel) for kernel in ("torch", "triton")]
    assert_cem_plans_agree(objectives, [-2.0], [2.0], 5, torch.randn(1, 3),
                           num_sequences=32, num_iterations=3, num_elites=4)


@needs_interpreter
@pytest.mark.parametrize("sample", [True, False])
@pytest.mark.parametrize("activation, keep", [("silu", 3), ("relu", 5)])  # of 5 members
def test_ensemble_kernel_returns_the_torch_paths(sample, activation, keep):
    assert_ensemble_returns_agree("triton", random_ensemble(activation, keep), keep, sample,
                                  ensemble_reward)


@needs_interpreter
def test_cem_through_the_ensemble_kernel_plans_as_the_torch_path():
    assert_ensemble_cem_agrees("triton", random_ensemble("silu", 3), ensemble_reward)


@needs_interpreter
def test_a_sampled_rollout_refuses_missing_noise():
    ensemble = FusedEnsemble(random_ensemble("silu", 3), split=1)
    assert_refuses_missing_noise(TritonRollout(ensemble, 3, sample=True))


@needs_interpreter
def test_refresh_snapshots_the_new_weights():
    dyn, rew = _bn_models(hidden=SMALL)
    objective = ModelObjective(dyn, known_reward, kernel="triton")
    obs, actions = torch.randn(1, 3), torch.rand(1, 8, 4, 1)
    before = objective(obs, actions).clone()
    with torch.no_grad():
        dyn.net[-1].bias.add_(0.5)
    assert torch.equal(objective(obs, actions), before)  # a snapshot until refresh()
    objective.refresh()
    after = objective(obs, actions)
    torch.testing.assert_close(after, reference(dyn, known_reward, None, obs, actions),
                               rtol=1e-4, atol=1e-4)
    assert not torch.allclose(after, before)


def test_kernel_refuses_what_it_cannot_run(monkeypatch):
    dyn, rew = _bn_models()
    for propagation in ("ts1", "expectation"):
        ens = EnsembleDynamics(GaussianEnsemble(4, 3, 2, hidden=(8,)), propagation, 2)
        with pytest.raises(ValueError, match=f"by tsinf only, not {propagation}"):
            ModelObjective(ens, known_reward, kernel="triton")
    with pytest.raises(ValueError, match="not with fused off or compile"):
        ModelObjective(dyn, rew, compile=True, kernel="triton")
    with pytest.raises(ValueError, match="kernel must be one of auto, torch, triton, native"):
        ModelObjective(dyn, rew, kernel="cuda")
    with pytest.raises(ValueError, match="block must be a power of two"):
        TritonRollout(FusedMLPs([dyn]), 3, block=24)
    with pytest.raises(ValueError, match="one network"):
        TritonRollout(FusedMLPs([dyn, rew]), 3)
    with pytest.raises(ValueError, match="needs a dynamics network"):
        TritonRollout(FusedMLPs([rew]), 3)
    # without the interpreter a CPU tensor is refused, not handed to a GPU launch
    from dynaplan.models import triton_kernel

    monkeypatch.setattr(triton_kernel, "INTERPRETED", False)
    with pytest.raises(RuntimeError, match="runs on CUDA tensors"):
        TritonRollout(FusedMLPs([dyn]), 3)(torch.zeros(2, 3), torch.zeros(2, 3, 1))


def test_missing_triton_is_refused_with_its_install_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "triton" else real(name, *a))
    assert "pip install triton" in unavailable()
    dyn, rew = _bn_models()
    with pytest.raises(ValueError, match="needs the triton package"):
        ModelObjective(dyn, rew, kernel="triton")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("flags, words", [
    (["--device", "cpu"], "rollout_kernel triton needs a CUDA device"),
    (["--dynamics", "ensemble", "--propagation", "ts1", "--device", "auto"],
     "rollout_kernel triton propagates an ensemble by tsinf only, not ts1"),
    (["--device", "auto"], "--rollout-kernel triton needs a CUDA device, and this run plans "
                           "on cpu"),
])
def test_train_refuses_the_kernel_off_a_gpu_in_one_line(flags, words, capsys, tmp_path):
    out = tmp_path / "r"
    assert main(["train", *TINY_NO_DEVICE, *flags, "--rollout-kernel", "triton",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err.strip().splitlines()[-1]
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_bench_refuses_the_kernel_off_a_gpu(capsys):
    assert main(["bench", "--device", "cpu", "--rollout-kernel", "triton"]) == 2
    assert "--rollout-kernel triton needs a CUDA device" in capsys.readouterr().err


def test_a_gpu_run_evaluates_on_the_cpu_without_its_gpu_settings(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--iterations", "1", "--out", str(run)]) == 0
    gpu_run = tmp_path / "gpu_run"
    shutil.copytree(run, gpu_run)
    config = json.loads((gpu_run / "config.json").read_text())
    config.update(device="cuda", cuda_graph="on", tf32="on", rollout_kernel="triton")
    (gpu_run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    results = []
    for folder in (run, gpu_run):
        assert main(["eval", str(folder), "--episodes", "1", "--device", "cpu"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[1]["returns"] == results[0]["returns"]

