"""TensorBoard event files: every metrics.csv column as a scalar at step env_steps, read
back with TensorBoard's own reader; none with `--tensorboard off`; a resumed run's redone
iterations shown once; `auto` without the package writes nothing and `on` refuses in one
line. The env is tests/toy_envs.py (10-step episodes)."""

import builtins
import csv
import shutil
import sys

import pytest
from test_logging import FLAGS, TOY, config

from dynaplan import tensorboard_log
from dynaplan.app.cli import main
from dynaplan.checkpoint import list_checkpoints
from dynaplan.loop import resume, train


def accumulator(folder):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tensorboard package (dynaplan[tensorboard]) is not installed")
    acc = event_accumulator.EventAccumulator(str(folder))
    acc.Reload()
    return acc


def scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def rows(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def needs_tensorboard():
    pytest.importorskip("tensorboard", reason="the tensorboard package (dynaplan[tensorboard]) "
                                              "is not installed")


def test_every_column_of_every_row_is_a_scalar_at_its_env_steps(tmp_path, needs_tensorboard):
    run = tmp_path / "run"
    assert main(["train", "--env", TOY, *FLAGS, "--iterations", "2", "--eval-episodes", "1",
                 "--tensorboard", "auto", "--quiet", "--out", str(run)]) == 0
    files = list((run / "tensorboard").iterdir())
    assert len(files) == 1 and files[0].name.startswith("events.out.tfevents.")
    acc = accumulator(run / "tensorboard")
    written = rows(run)
    finite = {k for r in written for k, v in r.items() if v != "nan"}
    assert set(acc.Tags()["scalars"]) == finite
    assert {"train/return", "train/predicted_return", "eval/return", "model/dynamics_valid_loss",
            "planner/return_gap", "time/iteration_s", "iteration"} <= finite
    steps = [int(r["env_steps"]) for r in written]
    for tag in finite:
        got = scalars(acc, tag)
        want = [(s, float(r[tag])) for s, r in zip(steps, written) if r[tag] != "nan"]
        assert [s for s, _ in got] == [s for s, _ in want], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6), tag


def test_tensorboard_off_writes_no_events(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--env", TOY, *FLAGS, "--quiet", "--out", str(run)]) == 0
    assert not (run / "tensorboard").exists()  # FLAGS hold --tensorboard off


def test_a_resumed_run_shows_each_iteration_once(tmp_path, needs_tensorboard):
    run = tmp_path / "run"
    train(config(iterations=3, tensorboard="auto"), run, progress=False)
    # as if the run had died after writing iteration 2's events but its checkpoint was lost:
    # the resumed session redoes iteration 2
    shutil.rmtree(list_checkpoints(run / "checkpoints")[-1])
    resume(run, progress=False)
    assert len(list((run / "tensorboard").iterdir())) == 2  # one file per session
    acc = accumulator(run / "tensorboard")
    written = rows(run)
    steps = [int(r["env_steps"]) for r in written]
    got = scalars(acc, "iteration")
    assert got == [(s, float(i)) for i, s in enumerate(steps)]
    assert [v for _, v in scalars(acc, "train/return")] == pytest.approx(
        [float(r["train/return"]) for r in written], rel=1e-6)
    # extending the run appends the new iterations to what is there
    resume(run, config(iterations=4, tensorboard="auto"), progress=False)
    steps = [int(r["env_steps"]) for r in rows(run)]
    assert [s for s, _ in scalars(accumulator(run / "tensorboard"), "iteration")] == steps


def test_without_the_package_auto_writes_nothing_and_on_refuses(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)
    assert tensorboard_log.why_not().startswith("the tensorboard package is not installed")
    run = tmp_path / "auto"
    train(config(tensorboard="auto"), run, progress=False)
    assert not (run / "tensorboard").exists()
    refused = tmp_path / "on"
    assert main(["train", "--env", TOY, *FLAGS, "--tensorboard", "on", "--quiet",
                 "--out", str(refused)]) == 2
    assert capsys.readouterr().err.strip() == (
        "dynaplan: error: tensorboard on: the tensorboard package is not installed (pip "
        "install dynaplan[tensorboard]); or run with --tensorboard off")
    assert not refused.exists()  # refused before anything was written


def test_the_checksum_is_tensorboards(needs_tensorboard):
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    for data in (b"", b"123456789", bytes(range(256)) * 3):
        assert tensorboard_log.masked_crc32c(data) == masked_crc32c(data)
