"""The native CPU rollout kernel computes what the dynamics MLP (and the learned reward)
compute step by step, the objective built on it returns what the torch path returns, and
what it cannot run is refused in one line."""

import json

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

from dynaplan.accel import native_build
from dynaplan.accel.fused import FusedMLPs
from dynaplan.accel.fused_ensemble import FusedEnsemble
from dynaplan.accel.native_rollout import NativeRollout, unavailable
from dynaplan.app.cli import main

needs_kernel = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))


def rewards_step_by_step(dyn, rew, state, actions):
    out = []
    with torch.no_grad():
        for t in range(actions.shape[1]):
            out.append(rew(state, actions[:, t]))
            state = dyn(state, actions[:, t])
    return torch.stack(out, dim=1)


@needs_kernel
@pytest.mark.parametrize("obs_dim, act_dim, net", [
    (3, 1, dict(hidden=(40, 40, 40), batch_norm=False, activation="silu")),  # padded to 48
    (3, 1, dict(hidden=(48, 24), batch_norm=True, activation="relu")),
    (5, 2, dict(hidden=(20,), batch_norm=False, activation="relu")),  # no hidden-to-hidden
    (17, 6, dict(hidden=(32, 32), batch_norm=True, activation="relu")),  # HalfCheetah's
    (3, 1, {}),  # the seed's 512 x 256 BatchNorm networks
])
def test_kernel_states_and_rewards_equal_the_step_by_step_rollout(obs_dim, act_dim, net):
    dyn, rew = bn_models(obs_dim, act_dim, **net)
    state = torch.randn(37, obs_dim)  # 37 rows: the last row block is partly padding
    actions = torch.rand(37, 6, act_dim) * 4 - 2
    traj, r = NativeRollout(FusedMLPs([dyn]), obs_dim, FusedMLPs([rew]))(state, actions)
    assert traj.shape == (37, 7, obs_dim) and r.shape == (37, 6)
    torch.testing.assert_close(traj, step_by_step(dyn, state, actions), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(r, rewards_step_by_step(dyn, rew, state, actions),
                               rtol=1e-5, atol=1e-4)
    traj_alone, none = NativeRollout(FusedMLPs([dyn]), obs_dim)(state, actions)
    assert none is None and torch.equal(traj_alone, traj)


@needs_kernel
def test_silu_is_float32_exact_over_a_wide_range():
    dyn, _ = bn_models(hidden=(64,), batch_norm=False, activation="silu")
    with torch.no_grad():
        dyn.net[0].weight.mul_(30.0)  # pre-activations spread over about [-60, 60]
    state, actions = torch.randn(60, 3), torch.rand(60, 1, 1) * 4 - 2
    traj, _ = NativeRollout(FusedMLPs([dyn]), 3)(state, actions)
    torch.testing.assert_close(traj, step_by_step(dyn, state, actions), rtol=1e-6, atol=1e-6)


@needs_kernel
def test_the_thread_split_does_not_change_a_bit():
    dyn, rew = bn_models(hidden=(40, 40), batch_norm=False, activation="silu")
    fused = FusedMLPs([dyn]), 3, FusedMLPs([rew])
    for rows in (4, 37):  # 4 rows: one row block, so most parts are empty
        state, actions = torch.randn(rows, 3), torch.rand(rows, 5, 1) * 4 - 2
        outs = [NativeRollout(*fused, threads=t)(state, actions) for t in (1, 2, 3, 5)]
        for traj, r in outs[1:]:
            assert torch.equal(traj, outs[0][0]) and torch.equal(r, outs[0][1])


@needs_kernel
def test_a_sampled_ensemble_rollout_refuses_missing_noise():
    ensemble = FusedEnsemble(random_ensemble("silu", 3), split=1)
    assert_refuses_missing_noise(NativeRollout(ensemble, 3, sample=True))


@needs_kernel
def test_kernel_refuses_what_it_cannot_run():
    dyn, rew = bn_models()
    with pytest.raises(ValueError, match="networks of one model"):
        NativeRollout(FusedMLPs([dyn, rew]), 3)
    with pytest.raises(ValueError, match="needs a dynamics network"):
        NativeRollout(FusedMLPs([rew]), 3)
    with pytest.raises(ValueError, match="float32 networks on the CPU"):
        NativeRollout(FusedMLPs([dyn.double()]), 3)
    dyn.float()
    with pytest.raises(ValueError, match=r"state \[R, 3\] and actions \[R, H, 1\] expected"):
        NativeRollout(FusedMLPs([dyn]), 3)(torch.zeros(2, 3), torch.zeros(3, 4, 1))


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """The kernel's library built anew into tmp_path, and loaded anew after the test: a
    process keeps the library it loaded, so a missing compiler shows only without it."""
    monkeypatch.setenv("DYNAPLAN_CACHE", str(tmp_path))
    native_build.reset()
    yield tmp_path
    native_build.reset()


@needs_kernel
def test_the_library_is_built_once_and_reused(fresh_build):
    native_build.library()
    built = list(fresh_build.glob("native_kernel_*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    native_build.reset()
    native_build.library()
    assert list(fresh_build.glob("*")) == built and built[0].stat().st_mtime_ns == stamp


@needs_kernel
def test_a_failing_compiler_is_one_line_leaves_nothing_and_runs_once(fresh_build, monkeypatch):
    monkeypatch.setenv("CC", "false")  # a "compiler" that fails without a word
    runs = []
    real_run = native_build.subprocess.run
    monkeypatch.setattr(native_build.subprocess, "run",
                        lambda *a, **k: runs.append(a) or real_run(*a, **k))
    with pytest.raises(RuntimeError, match="building the native rollout kernel failed"):
        native_build.library()
    assert unavailable().startswith("building the native rollout kernel failed")
    assert len(runs) == 1  # the refusal is kept: checks do not rerun the compiler
    assert list(fresh_build.glob("*")) == []


@needs_kernel
def test_a_kernel_that_cannot_be_built_is_one_warning_line_a_process(fresh_build, tmp_path,
                                                                     monkeypatch, capsys):
    cc = tmp_path / "broken-cc"
    cc.write_text("#!/bin/sh\necho 'broken-cc: cannot compile anything' >&2\nexit 1\n")
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    run = tmp_path / "run"
    assert main(["train", *TINY, "--iterations", "1", "--out", str(run)]) == 0
    # the rollouts and the fits both asked for the kernel: one line says it is off, and why
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "kernel" in ln]
    assert lines == ["dynaplan: warning: building the native rollout kernel failed: broken-cc: "
                     "cannot compile anything; the CPU kernel is off in this process, so the "
                     "automatic choice plans and fits through torch ops (slower)"]
    assert json.loads((run / "summary.json").read_text())["rollout_kernel"] == "torch"
    assert main(["eval", str(run), "--episodes", "1", "--quiet", "--device", "cpu"]) == 0
    assert "kernel" not in capsys.readouterr().err  # once a process


def test_no_compiler_or_cpu_is_refused_in_one_line(fresh_build, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert unavailable() == "the native rollout kernel needs a C compiler (cc or gcc, or $CC)"
    dyn, rew = bn_models()
    with pytest.raises(ValueError, match="needs a C compiler"):
        objective(dyn, rew, kernel="native")
    monkeypatch.setattr(native_build.platform, "machine", lambda: "aarch64")
    native_build.reset()  # (a process keeps its first answer)
    assert unavailable() == "the native rollout kernel needs Linux on an x86-64 CPU"


@needs_kernel
def test_train_on_the_kernel_by_default_and_eval(tmp_path, capsys):
    chosen = []
    for flags in (["--rollout-kernel", "torch"], []):  # auto picks the native kernel here
        out = tmp_path / ("default" if not flags else "torch")
        assert main(["train", *TINY, *flags, "--out", str(out)]) == 0
        chosen.append(json.loads((out / "summary.json").read_text())["rollout_kernel"])
    assert chosen == ["torch", "native"]
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "default"), "--episodes", "1", "--json",
                 "--device", "cpu"]) == 0
    assert len(json.loads(capsys.readouterr().out)["returns"]) == 1


def test_train_and_bench_refuse_a_missing_compiler_in_one_line(fresh_build, tmp_path, capsys,
                                                                monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert_refused_before_writing(
        [*TINY_NO_DEVICE, "--device", "cpu", "--rollout-kernel", "native"], tmp_path, capsys,
        "--rollout-kernel native: the native rollout kernel needs a C compiler (cc or gcc, "
        "or $CC)")
    assert main(["bench", "--device", "cpu", "--rollout-kernel", "native"]) == 2
    assert "needs a C compiler" in capsys.readouterr().err


@needs_kernel
def test_a_native_run_evaluates_without_a_compiler(fresh_build, tmp_path, capsys,
                                                    monkeypatch):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--iterations", "1", "--rollout-kernel", "native",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("CC", "no-such-compiler-here")  # evaluated elsewhere: the torch path
    native_build.reset()
    assert main(["eval", str(run), "--episodes", "1", "--json", "--device", "cpu"]) == 0
    assert len(json.loads(capsys.readouterr().out)["returns"]) == 1


def test_a_run_refuses_a_kernel_that_cannot_propagate_its_ensemble_before_writing(tmp_path,
                                                                                  capsys):
    assert_refused_before_writing(
        [*TINY, "--dynamics", "ensemble", "--propagation", "ts1", "--rollout-kernel", "native"],
        tmp_path, capsys, "--rollout-kernel native: the native rollout kernel propagates an "
        "ensemble by tsinf only, not ts1")


def assert_refused_before_writing(flags, tmp_path, capsys, ending):
    """`dynaplan train FLAGS` exits 2 with one last line ending in `ending`, no traceback,
    and no run folder."""
    out = tmp_path / "r"
    assert main(["train", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith(ending)
    assert not out.exists()
