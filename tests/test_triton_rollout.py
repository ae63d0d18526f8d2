"""The Triton rollout kernel computes what the dynamics MLP computes step by step, refuses
what it cannot run, and runs are refused or evaluated without it off a GPU (the objective
built on it returns the reference's: test_accel_rollouts.py). Without
a GPU the kernel runs in Triton's interpreter (conftest.py sets TRITON_INTERPRET): the
same kernel source, its arithmetic and indexing, on CPU tensors. Its compiled form runs
in test_cuda_paths.py."""

import json
import shutil

import pytest
import torch
from conftest import TINY, TINY_NO_DEVICE
from objectives import (
    assert_refuses_missing_noise,
    bn_models,
    objective,
    random_ensemble,
    step_by_step,
)

from dynaplan.accel.fused import FusedMLPs
from dynaplan.accel.fused_ensemble import FusedEnsemble
from dynaplan.app.cli import main

pytest.importorskip("triton")
needs_interpreter = pytest.mark.skipif(
    torch.cuda.is_available(), reason="the CPU tests interpret the kernel; a GPU compiles it")

from dynaplan.accel.triton_rollout import TritonRollout, unavailable  # noqa: E402


@needs_interpreter
@pytest.mark.parametrize("obs_dim, act_dim, net", [
    (3, 1, dict(hidden=(40, 40, 40), batch_norm=False, activation="silu")),
    (3, 1, dict(hidden=(48, 24), batch_norm=True, activation="relu")),  # widths padded
    (5, 2, dict(hidden=(20,), batch_norm=False, activation="relu")),  # no hidden-to-hidden
])
def test_kernel_states_equal_the_step_by_step_rollout(obs_dim, act_dim, net):
    dyn, _ = bn_models(obs_dim, act_dim, **net)
    state = torch.randn(37, obs_dim)  # 37 rows: the last program's rows are partly masked
    actions = torch.rand(37, 6, act_dim) * 4 - 2
    got = TritonRollout(FusedMLPs([dyn]), obs_dim)(state, actions)
    want = step_by_step(dyn, state, actions)
    assert got.shape == (37, 7, obs_dim)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@needs_interpreter
@pytest.mark.parametrize("block, block_m", [(16, 16), (64, 32)])
def test_kernel_tiles_change_nothing_but_speed(block, block_m):
    dyn, _ = bn_models(hidden=(40, 40), batch_norm=False, activation="silu")
    state, actions = torch.randn(21, 3), torch.rand(21, 4, 1) * 4 - 2
    got = TritonRollout(FusedMLPs([dyn]), 3, block=block, block_m=block_m)(state, actions)
    torch.testing.assert_close(got, step_by_step(dyn, state, actions), rtol=1e-5, atol=1e-5)


@needs_interpreter
def test_a_sampled_rollout_refuses_missing_noise():
    ensemble = FusedEnsemble(random_ensemble("silu", 3), split=1)
    assert_refuses_missing_noise(TritonRollout(ensemble, 3, sample=True))


def test_kernel_refuses_what_it_cannot_run(monkeypatch):
    dyn, rew = bn_models()
    with pytest.raises(ValueError, match="block must be a power of two"):
        TritonRollout(FusedMLPs([dyn]), 3, block=24)
    with pytest.raises(ValueError, match="one network"):
        TritonRollout(FusedMLPs([dyn, rew]), 3)
    with pytest.raises(ValueError, match="needs a dynamics network"):
        TritonRollout(FusedMLPs([rew]), 3)
    # without the interpreter a CPU tensor is refused, not handed to a GPU launch
    from dynaplan.accel import triton_kernel

    monkeypatch.setattr(triton_kernel, "INTERPRETED", False)
    with pytest.raises(RuntimeError, match="runs on CUDA tensors"):
        TritonRollout(FusedMLPs([dyn]), 3)(torch.zeros(2, 3), torch.zeros(2, 3, 1))


def test_missing_triton_is_refused_with_its_install_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "triton" else real(name, *a))
    assert "pip install triton" in unavailable()
    dyn, rew = bn_models()
    with pytest.raises(ValueError, match="needs the triton package"):
        objective(dyn, rew, kernel="triton")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("flags, words", [
    (["--device", "cpu"], "rollout_kernel triton needs a CUDA device"),
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
    config["device"] = "cuda"
    config["speed"].update(cuda_graph=True, tf32=True, rollout_kernel="triton")
    (gpu_run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    results = []
    for folder in (run, gpu_run):
        assert main(["eval", str(folder), "--episodes", "1", "--json", "--device", "cpu"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[1]["returns"] == results[0]["returns"]

