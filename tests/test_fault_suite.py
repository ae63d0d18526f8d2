"""Runs trusted with shared folders and bad days: no write outside the run folder, verified
checkpoints, one writer per run, every bad input and fault answered in one line (exit 2,
no traceback), and nothing written lost. (Damaged and malicious checkpoint files, signals
and kills at random moments: test_resume.py; environment faults: test_faults.py.)"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY
from resume_helpers import ARGS, assert_same_run, copy_run, metrics

import dynaplan.checkpoint as checkpoint_module
from dynaplan.app.cli import main
from dynaplan.checkpoint import list_checkpoints
from dynaplan.runlock import RunLock


def one_line(args, capsys, code=2):
    got = main(args)
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if not ln.startswith("dynaplan: warning:")]
    assert got == code and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- writes stay inside the run --------------------------------------------------------


@pytest.mark.parametrize("name", ["metrics.csv", "episodes.csv", "plots"])
def test_a_symlinked_output_is_refused_and_its_target_untouched(name, reference, tmp_path,
                                                                capsys):
    run = copy_run(reference, tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    target = victim / "precious.txt" if "." in name else victim
    shutil.rmtree(run / name) if (run / name).is_dir() else (run / name).unlink()
    (run / name).symlink_to(target)
    line = one_line(["train", *ARGS, "--iterations", "5", "--resume", str(run)], capsys)
    assert "is a symbolic link" in line and name in line
    assert (victim / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]


def test_a_symlinked_checkpoint_is_not_read_nor_removed(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(list_checkpoints(run / "checkpoints")[-1], elsewhere)
    (run / "checkpoints" / "iter_000009").symlink_to(elsewhere)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iter_000002",
                                                                       "iter_000003"]
    assert main(["train", *ARGS, "--iterations", "5", "--resume", str(run)]) == 0
    assert elsewhere.is_dir() and (elsewhere / "tensors.pt").is_file()


# -- verified checkpoints --------------------------------------------------------------


def flip_a_bit(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped bit", "older tensors", "edited state"])
def test_a_changed_checkpoint_is_refused_and_the_previous_one_resumes(damage, reference,
                                                                      tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    old, new = list_checkpoints(run / "checkpoints")
    if damage == "flipped bit":
        flip_a_bit(new / "tensors.pt")
        bad = new / "tensors.pt"
    elif damage == "older tensors":
        shutil.copy(old / "tensors.pt", new / "tensors.pt")
        bad = new / "tensors.pt"
    else:
        state = json.loads((new / "state.json").read_text())
        state["counters"]["wall_s"] += 1.0
        (new / "state.json").write_text(json.dumps(state))
        bad = new / "state.json"
    assert main(["train", *ARGS, "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"checkpoint file {bad} does not match its manifest" in err and "falling back" in err
    assert_same_run(run, reference)  # iteration 3 again, with the same result


@pytest.mark.parametrize("field, value", [
    ("metrics", [{"iteration": "zero"}]), ("counters", {"wall_s": "long"}),
    ("episodes", [[0, 0, 1]]), ("rng", {"split": 3})])
def test_a_checkpoint_that_reads_but_does_not_fit_is_passed_over(field, value, reference,
                                                                 tmp_path, capsys):
    """A consistent manifest over wrong contents (as a hand-edited folder would have)."""
    run = copy_run(reference, tmp_path)
    new = list_checkpoints(run / "checkpoints")[-1]
    state = json.loads((new / "state.json").read_text())
    state[field] = value
    text = json.dumps(state)
    (new / "state.json").write_text(text)
    manifest = json.loads((new / "manifest.json").read_text())
    import hashlib

    manifest["files"]["state.json"] = hashlib.sha256(text.encode()).hexdigest()
    (new / "manifest.json").write_text(json.dumps(manifest))
    assert main(["train", *ARGS, "--iterations", "5", "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert str(new) in err and "trying the previous checkpoint" in err and "Traceback" not in err
    assert metrics(run)[:4] == metrics(reference)  # iteration 3 again, with the same result


def test_a_missing_manifest_is_damage(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    new = list_checkpoints(run / "checkpoints")[-1]
    (new / "manifest.json").unlink()
    assert main(["eval", str(run), "--episodes", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["checkpoint_iteration"] == 2 and "manifest.json" in err


# -- one writer per run ----------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_first(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    before = (run / "metrics.csv").read_text()
    with RunLock(run):  # as another process holding the run (flock is per open file)
        line = one_line(["train", *ARGS, "--iterations", "5", "--resume", str(run)], capsys)
    assert f"is in use by process {os.getpid()}" in line
    assert (run / "metrics.csv").read_text() == before
    (run / ".lock").write_text("4242424\n")  # a dead holder's lock file: taken over
    assert main(["train", *ARGS, "--iterations", "5", "--resume", str(run)]) == 0
    assert len(metrics(run)) == 5


def test_two_resumes_at_once_write_each_iteration_once(reference, tmp_path):
    run = copy_run(reference, tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "dynaplan", "train", *ARGS, "--iterations", "6",
               "--resume", str(run), "--quiet"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    time.sleep(0.5)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    first.communicate(timeout=300)
    assert first.returncode == 0
    if second.returncode == 2:  # it came while the first held the run
        assert "is in use by process" in second.stderr
    assert [int(r["iteration"]) for r in metrics(run)] == [0, 1, 2, 3, 4, 5]


# -- faults while writing --------------------------------------------------------------


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("PytorchStreamWriter failed writing file")])
def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last(error, reference,
                                                                       tmp_path, capsys,
                                                                       monkeypatch):
    run = copy_run(reference, tmp_path)
    real = checkpoint_module._serialized

    def full(write):
        if getattr(write, "__name__", "") == "<lambda>":
            raise error
        return real(write)

    monkeypatch.setattr(checkpoint_module, "_serialized", full)
    line = one_line(["train", *ARGS, "--iterations", "5", "--resume", str(run)], capsys)
    assert "could not write the checkpoint of iteration 4" in line
    assert "previous checkpoints are kept" in line
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iter_000002",
                                                                       "iter_000003"]
    monkeypatch.undo()  # space again: the run goes on from its last checkpoint
    assert main(["train", *ARGS, "--iterations", "5", "--resume", str(run)]) == 0
    assert metrics(run)[:4] == metrics(reference) and len(metrics(run)) == 5


def test_a_real_full_disk_is_one_line(tmp_path, capsys):
    """On a 2 MiB tmpfs (where this test may mount one; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not allowed'}")
    try:
        line = one_line(["train", *TINY, "--iterations", "3", "--out", str(disk / "run")],
                        capsys)
        assert "No space left on device" in line or "could not write" in line
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_kill_inside_the_checkpoint_write_resumes_to_the_same_run(reference, tmp_path):
    run = tmp_path / "run"
    marker = tmp_path / "inside"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               DYNAPLAN_TEST_CHECKPOINT_PAUSE=f"2:{marker}")
    proc = subprocess.Popen([sys.executable, "-m", "dynaplan", "train", *ARGS, "--out",
                             str(run)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), "the write never reached the hook"
        partial = marker.read_text()
        assert os.path.isdir(partial) and os.listdir(partial) == ["state.json"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iter_000000",
                                                                       "iter_000001"]
    assert main(["train", *ARGS, "--resume", str(run)]) == 0
    assert_same_run(run, reference)


@pytest.mark.parametrize("command", ["plot", "eval --video", "report"])
def test_an_output_folder_that_cannot_be_written_is_one_line(command, reference, tmp_path,
                                                            capsys):
    run = copy_run(reference, tmp_path)
    blocked = {"plot": "plots", "eval --video": "videos"}.get(command)
    if blocked:
        shutil.rmtree(run / blocked)
        (run / blocked).write_text("a file where a folder should be")
    args = {"plot": ["plot", str(run)],
            "eval --video": ["eval", str(run), "--episodes", "1", "--video", "--quiet"],
            "report": ["report", str(run), "--out", str(run / "metrics.csv" / "r")]}[command]
    line = one_line(args, capsys)
    assert "cannot" in line


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("flags, words", [
    (["--lr", "nan"], "lr must be a finite number, got nan"),
    (["--input-noise", "inf"], "input_noise must be a finite number"),
    (["--ensemble-lr", "nan"], "ensemble_lr must be a finite number"),
    (["--planner", "icem", "--init-std", "nan"], "init_std must be a finite number"),
    (["--planner", "mppi", "--temperature", "inf"], "temperature must be a finite number"),
    (["--valid-fraction", "nan"], "valid_fraction must be a finite number"),
    (["--seed", str(2**40)], "seed must be at most 4294967295"),
    (["--num-sequences", "40000000", "--horizon", "200"], "a plan call would need about"),
])
def test_bad_numbers_are_refused_by_name_before_anything_is_written(flags, words, tmp_path,
                                                                    capsys):
    out = tmp_path / "r"
    assert words in one_line(["train", *TINY, *flags, "--out", str(out)], capsys)
    assert not out.exists()


def test_nan_in_a_config_file_names_the_file_and_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: .nan\n")
    line = one_line(["train", *TINY, "--config", str(cfg), "--out", str(tmp_path / "r")],
                    capsys)
    assert f"config file {cfg}: lr must be a finite number" in line


@pytest.mark.parametrize("content, words", [
    (b"horizon: 5\n\xff\xfe\n", "is not UTF-8 text"),
    (b"horizon: 5\n" + b"# padding\n" * 120_000, "more than a config file of options"),
    (b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     b"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
     b"horizon: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n", "unknown key 'a'"),
    (b"horizon: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n", "horizon must be an integer"),
])
def test_bad_config_files_are_one_short_line(content, words, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    start = time.perf_counter()
    line = one_line(["train", *TINY, "--config", str(cfg), "--out", str(tmp_path / "r")],
                    capsys)
    assert words in line and len(line) < 600 and time.perf_counter() - start < 10


def test_an_alias_bomb_under_a_known_key_is_quoted_short(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    rows = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    rows += [f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]" for k in range(1, 9)]
    cfg.write_text("horizon:\n  " + "\n  ".join(r.replace(": &", ": &") for r in rows) + "\n")
    start = time.perf_counter()
    line = one_line(["train", *TINY, "--config", str(cfg), "--out", str(tmp_path / "r")],
                    capsys)
    assert "horizon must be an integer" in line
    assert len(line) < 600 and time.perf_counter() - start < 10


def test_a_run_that_failed_before_its_first_checkpoint_can_be_started_again(tmp_path,
                                                                           capsys):
    out = tmp_path / "r"
    out.mkdir()
    assert main(["train", *TINY, "--out", str(out)]) == 0  # a folder without a run: used
    shutil.rmtree(out / "checkpoints")  # as if it had stopped before its first checkpoint
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert len(metrics(out)) == 2
