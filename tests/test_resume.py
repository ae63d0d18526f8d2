"""Checkpoints and resume: a run killed at any moment (kill -9, SIGTERM, Ctrl-C) and
resumed ends with the same metrics.csv (timing aside), episodes.csv and weights as a run
never stopped; damaged, newer-format or malicious checkpoints are refused in one line
(or skipped for the previous one), without running any code."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import TINY
from resume_helpers import (  # noqa: E402
    ARGS,
    assert_same_run,
    copy_run,
    ctrl_c_in_iteration,
    metrics,
    newest,
)

import dynaplan.checkpoint as checkpoint_module
from dynaplan import loop
from dynaplan.app.cli import main
from dynaplan.checkpoint import list_checkpoints, save_checkpoint
from dynaplan.checkpoint_read import load_latest, read_checkpoint
from dynaplan.data import ReplayBuffer
from dynaplan.errors import CheckpointError

# -- killed for real -------------------------------------------------------------------


def spawn(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "dynaplan", "train", *map(str, args)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def wait_until(proc, condition, timeout=120):
    """Poll every millisecond until `condition()` or the process ends; True if the
    condition came first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.001)
    raise AssertionError("timed out")


def iterations_done(run):
    found = list_checkpoints(run / "checkpoints")
    return int(found[-1].name.split("_")[1]) + 1 if found else 0


def writing(run):
    folder = run / "checkpoints"
    return folder.is_dir() and any(".tmp-" in p.name for p in folder.iterdir())


def test_killed_run_resumes_to_the_same_result(reference, tmp_path):
    run = tmp_path / "run"
    # kill -9 right after the first checkpoint is complete
    proc = spawn(*ARGS, "--out", run)
    assert wait_until(proc, lambda: iterations_done(run) >= 1), proc.communicate()[1]
    proc.kill()
    proc.wait()
    # kill -9 the resumed run while it writes its next checkpoint (or just after)
    proc = spawn(*ARGS, "--resume", run)
    wait_until(proc, lambda: writing(run) or iterations_done(run) >= 2)
    proc.kill()
    proc.wait()
    assert newest(run) is not None  # the last complete checkpoint is readable
    # SIGTERM the next resumed run in the middle of an iteration: one line, exit 143
    proc = spawn(*ARGS, "--resume", run)
    done = iterations_done(run)
    if wait_until(proc, lambda: iterations_done(run) > done):
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode != 0:  # (0 when it had already finished)
        assert proc.returncode == 143, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("dynaplan: stopped by SIGTERM after iteration ")
        assert f"; resume with: dynaplan train --resume {run};" in last
        assert "Traceback" not in err
    # finish in-process and compare with the run that was never stopped
    assert main(["train", *ARGS, "--resume", str(run)]) == 0
    assert_same_run(run, reference)


# -- signals, in-process at exact moments ----------------------------------------------


def test_ctrl_c_mid_iteration_stops_with_a_resume_hint(reference, tmp_path, monkeypatch,
                                                       capsys):
    ctrl_c_in_iteration(monkeypatch, 1)
    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    assert main(["train", *ARGS, "--out", str(run)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"dynaplan: stopped by SIGINT after iteration 0; resume with: dynaplan train "
        f"--resume {run}; figures: dynaplan plot {run}; a video of its planner: dynaplan "
        f"eval {run} --video")
    assert [r["iteration"] for r in metrics(run)] == ["0"]
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    monkeypatch.undo()
    assert main(["train", *ARGS, "--resume", str(run)]) == 0
    assert_same_run(run, reference)


def test_ctrl_c_while_a_resumed_run_loads_names_its_checkpoint(reference, tmp_path,
                                                              monkeypatch, capsys):
    real = loop.restore

    def restore_with_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "restore", restore_with_ctrl_c)
    run = copy_run(reference, tmp_path)
    assert main(["train", *ARGS, "--iterations", "5", "--resume", str(run)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"dynaplan: stopped by SIGINT after iteration 3; resume with: dynaplan train "
        f"--resume {run}; figures: dynaplan plot {run}; a video of its planner: dynaplan "
        f"eval {run} --video")


def test_sigterm_during_a_checkpoint_write_lets_it_finish(tmp_path, monkeypatch, capsys):
    real = loop.save_checkpoint

    def save_with_sigterm(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", save_with_sigterm)
    run = tmp_path / "run"
    assert main(["train", *ARGS, "--out", str(run)]) == 143
    assert "stopped by SIGTERM after iteration 0" in capsys.readouterr().err
    assert newest(run).iteration == 0
    assert [r["iteration"] for r in metrics(run)] == ["0"]


def test_a_second_signal_after_the_stop_message_is_ignored():
    # the console script (cli.entry): a Ctrl-C and a SIGTERM that arrive once main has
    # returned, here during interpreter shutdown, neither print a traceback after the
    # one-line message nor change the exit status
    script = (
        "import atexit, os, signal, sys, time\n"
        "import dynaplan.app.cli as cli\n"
        "def late():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(0.2)\n"
        "atexit.register(late)\n"
        "def stopped():\n"
        "    print('dynaplan: stopped by SIGINT', file=sys.stderr)\n"
        "    return 130\n"
        "cli.main = stopped\n"
        "cli.entry()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert (proc.returncode, proc.stderr) == (130, "dynaplan: stopped by SIGINT\n")


# -- damaged and hostile checkpoints ---------------------------------------------------


class RunsCode:
    """Pickled, it would create `marker` when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage(kind, folder, tmp_path):
    if kind == "truncated tensors":
        truncate(folder / "tensors.pt")
        return folder / "tensors.pt"
    if kind == "truncated buffer":
        truncate(folder / "buffer.npz")
        return folder / "buffer.npz"
    if kind == "garbage state":
        (folder / "state.json").write_text("{\"format\": 1, \"iter")
        return folder / "state.json"
    if kind == "missing tensors":
        (folder / "tensors.pt").unlink()
        return folder / "tensors.pt"
    if kind == "code in tensors":
        torch.save({"dynamics": RunsCode(tmp_path / "ran")}, folder / "tensors.pt")
        return folder / "tensors.pt"
    if kind == "object array in buffer":
        np.savez(folder / "buffer.npz", obs=np.array([RunsCode(tmp_path / "ran")], object))
        return folder / "buffer.npz"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["truncated tensors", "truncated buffer", "garbage state",
                                  "missing tensors", "code in tensors",
                                  "object array in buffer"])
def test_eval_skips_a_damaged_newest_checkpoint(kind, reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    bad = damage(kind, list_checkpoints(run / "checkpoints")[-1], tmp_path)
    assert main(["eval", str(run), "--episodes", "1", "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["checkpoint_iteration"] == 2
    assert err.count("\n") == 1 and str(bad) in err and "falling back" in err
    assert "iter_000002" in err
    assert not (tmp_path / "ran").exists()  # no code ran


def test_resume_falls_back_past_a_damaged_newest_checkpoint(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    bad = damage("truncated tensors", list_checkpoints(run / "checkpoints")[-1], tmp_path)
    assert main(["train", *ARGS, "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"checkpoint file {bad} does not match its manifest" in err and "falling back" in err
    assert_same_run(run, reference)  # iteration 3 again, with the same result


def test_no_readable_checkpoint_is_one_line(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    for folder in list_checkpoints(run / "checkpoints"):
        truncate(folder / "tensors.pt")
    before = (run / "metrics.csv").read_text()
    assert main(["train", *ARGS, "--resume", str(run)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("dynaplan: error: no usable checkpoint in ")
    assert "iter_000002" in last and "Traceback" not in last
    assert (run / "metrics.csv").read_text() == before  # nothing written is lost


@pytest.mark.parametrize("version, words", [(99, "has format 99, newer than this dynaplan"),
                                            ("one", "unknown format 'one'")])
def test_unknown_checkpoint_format_is_refused(version, words, reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    state = list_checkpoints(run / "checkpoints")[-1] / "state.json"
    state.write_text(json.dumps(dict(json.loads(state.read_text()), format=version)))
    for command in (["train", *ARGS, "--resume", str(run)], ["eval", str(run)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err and "iter_000003" in err


# -- the command line ------------------------------------------------------------------


def run_bad(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_resume_refuses_what_does_not_fit(reference, tmp_path, capsys):
    assert "not a run folder" in run_bad(["train", *ARGS, "--resume", str(tmp_path)], capsys)
    assert "--horizon 5 contradicts the run's config (3)" in run_bad(
        ["train", *ARGS, "--horizon", "5", "--resume", str(reference)], capsys)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("planner: random\n")
    assert "--planner random contradicts" in run_bad(
        ["train", *ARGS, "--config", str(cfg), "--resume", str(reference)], capsys)
    assert "cannot be combined with --resume" in run_bad(
        ["train", *ARGS, "--resume", str(reference), "--out", str(tmp_path / "x")], capsys)
    assert "--keep-checkpoints must be positive" in run_bad(
        ["train", *ARGS, "--keep-checkpoints", "0", "--out", str(tmp_path / "y")], capsys)
    assert "already run 4 iterations" in run_bad(
        ["train", *ARGS, "--iterations", "2", "--resume", str(reference)], capsys)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_resume_of_a_finished_run_says_so(reference, capsys):
    before = (reference / "metrics.csv").read_text()
    assert main(["train", *ARGS, "--resume", str(reference)]) == 0
    assert "is already complete (4 iterations)" in capsys.readouterr().out
    assert (reference / "metrics.csv").read_text() == before


def test_eval_of_a_run_without_checkpoints(reference, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(reference / "config.json", run / "config.json")
    assert "no checkpoint in" in run_bad(["eval", str(run)], capsys)


def test_the_newest_k_checkpoints_are_kept(reference, tmp_path):
    assert [p.name for p in list_checkpoints(reference / "checkpoints")] == [
        "iter_000002", "iter_000003"]
    run = tmp_path / "run"
    assert main(["train", *TINY, "--keep-checkpoints", "1", "--out", str(run)]) == 0
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iter_000001"]


# -- the write itself ------------------------------------------------------------------


def small_buffer(n=5):
    buf = ReplayBuffer(2, 1)
    for i in range(n):
        buf.add([i, i], [0.5], -1.0, [i + 1, i], False, False)
    return buf


def test_a_write_that_dies_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    save_checkpoint(folder, 0, {"note": "first"}, {"w": torch.ones(3)}, small_buffer(), keep=2)

    def dies_half_way(obj, fh):
        fh.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt  # as if killed in the middle of the write

    monkeypatch.setattr(checkpoint_module.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(folder, 1, {}, {"w": torch.zeros(3)}, small_buffer(7), keep=2)
    monkeypatch.undo()
    assert [p.name for p in folder.iterdir()] == ["iter_000000"]
    # a temp folder left by a process killed outright is ignored, then cleaned up
    leftover = folder / ".iter_000001.tmp-999999"
    leftover.mkdir()
    (leftover / "state.json").write_text("{")
    latest = load_latest(folder)
    assert latest.iteration == 0 and latest.state["note"] == "first"
    assert torch.equal(latest.tensors["w"], torch.ones(3)) and len(latest.buffer) == 5
    save_checkpoint(folder, 1, {}, {"w": torch.zeros(3)}, small_buffer(7), keep=1)
    assert [p.name for p in folder.iterdir()] == ["iter_000001"]
    assert read_checkpoint(folder / "iter_000001").state["format"] == 2


def test_checkpoint_of_another_iteration_is_refused(tmp_path):
    folder = tmp_path / "checkpoints"
    save_checkpoint(folder, 3, {}, {}, small_buffer())
    (folder / "iter_000003").rename(folder / "iter_000004")
    with pytest.raises(CheckpointError, match="is for iteration 3"):
        read_checkpoint(folder / "iter_000004")
