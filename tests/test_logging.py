"""Messages as Python logging records: the library prints nothing unless logging is
configured (or `echo=` / `warn=` are given), the command line shows the same lines as
before, --quiet keeps the warnings only and -v adds debug lines; run.json says who ran a
run with what, one entry per session; the stop line names resume, plot and eval. The env
is tests/toy_envs.py (10-step episodes), so each run takes a second or two."""

import json
import logging
import os
import signal
import sys

import toy_envs
from conftest import TINY as CLI_TINY
from resume_helpers import ctrl_c_in_iteration

import dynaplan
from dynaplan import loop
from dynaplan.app.cli import main
from dynaplan.config import config_from_values
from dynaplan.loop import resume, train

TOY = "toy_envs:ToyPoint-v0"
TINY = {"env": TOY, "iterations": 1, "random_trajectories": 1, "steps_per_iteration": 10,
        "horizon": 3, "num_sequences": 8, "num_iterations": 2, "num_elites": 2, "epochs": 1,
        "batch_size": 64, "video_every": 0, "tensorboard": "off", "device": "cpu"}
FLAGS = [x for k, v in TINY.items() if k != "env" for x in (f"--{k.replace('_', '-')}", str(v))]
"""TINY as flags, but the env."""


def config(**values):
    return config_from_values({**TINY, **values})


def lines(records, level=logging.INFO, logger="dynaplan.loop"):
    return [r.getMessage() for r in records if r.name == logger and r.levelno == level]


def test_the_library_prints_nothing_and_logs_every_line(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG, logger="dynaplan")
    train(config(), tmp_path / "run", progress=False)
    assert capsys.readouterr() == ("", "")
    said = lines(caplog.records)
    assert said[0].startswith("random data: 10 transitions, mean return ")
    assert "iteration 0 episode 0: observed/predicted return " in said[1]
    assert said[2].startswith("iteration 0: return ")
    assert said[-1] == f"run folder: {tmp_path / 'run'}"
    assert len(said) == 4
    assert [m for m in lines(caplog.records, logging.DEBUG) if m.startswith("checkpoint: ")]


def test_the_package_logger_has_a_null_handler():
    # so that Python's last-resort handler never prints the library's warnings
    handlers = logging.getLogger("dynaplan").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_warnings_are_records_or_go_to_warn(tmp_path, capsys, caplog):
    # a factory without a render_mode argument cannot make videos: one warning
    caplog.set_level(logging.WARNING, logger="dynaplan")
    train(config(video_every=1), tmp_path / "a", progress=False, env=toy_envs.make_toy_quietly)
    assert any("no videos" in m for m in lines(caplog.records, logging.WARNING))
    assert capsys.readouterr() == ("", "")
    caplog.clear()
    said, warned = [], []
    train(config(video_every=1), tmp_path / "b", progress=False, echo=said.append,
          warn=warned.append, env=toy_envs.make_toy_quietly)
    assert any("no videos" in w for w in warned)
    assert said[-1] == f"run folder: {tmp_path / 'b'}"
    assert not caplog.records  # given echo and warn, the lines go there only


def test_the_cli_prints_the_lines_on_stdout_and_warnings_on_stderr(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *FLAGS, "--video-every", "1", "--env", "toy_envs:make_toy_quietly",
                 "--out", str(run)]) == 0  # a factory without render_mode: one warning
    out, err = capsys.readouterr()
    out_lines = out.strip().splitlines()
    assert out_lines[0].startswith("random data: 10 transitions")
    assert out_lines[-1] == f"run folder: {run}"
    assert "dynaplan: warning: toy_envs:make_toy_quietly does not render rgb_array frames" \
        in err
    assert "dynaplan: debug:" not in err
    # the command leaves logging as it found it: the library is quiet again
    assert not [h for h in logging.getLogger("dynaplan").handlers
                if not isinstance(h, logging.NullHandler)]


def test_quiet_keeps_the_warnings_and_verbose_adds_debug_lines(tmp_path, capsys):
    run = tmp_path / "quiet"
    assert main(["train", *FLAGS, "--video-every", "1", "--env", "toy_envs:make_toy_quietly",
                 "--quiet", "--out", str(run)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{run}\n"  # the run folder alone, as before
    assert [line for line in err.splitlines() if line.startswith("dynaplan:")] == [
        "dynaplan: warning: toy_envs:make_toy_quietly does not render rgb_array frames (a "
        "factory takes a render_mode argument to do so): no videos"]
    run = tmp_path / "verbose"
    assert main(["train", "--env", TOY, *FLAGS, "-v", "--out", str(run)]) == 0
    out, err = capsys.readouterr()
    assert f"run folder: {run}" in out
    assert f"dynaplan: debug: checkpoint: {run / 'checkpoints' / 'iter_000000'}" in err
    assert f"dynaplan: debug: figures redrawn in {run / 'plots'} (" in err
    assert main(["train", "--env", TOY, *FLAGS, "-v", "--quiet", "--out", str(tmp_path / "x")]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_run_json_records_each_session(tmp_path):
    run = tmp_path / "run"
    train(config(), run, progress=False)
    first = json.loads((run / "run.json").read_text())
    assert first["format"] == 1 and len(first["sessions"]) == 1
    entry = first["sessions"][0]
    assert entry["kind"] == "train" and entry["resumed_after"] is None
    assert entry["outcome"] == "completed" and entry["ended"] >= entry["started"]
    assert entry["command"] == sys.argv and entry["pid"] == os.getpid()
    assert entry["dynaplan"] == dynaplan.__version__
    assert entry["torch"] == __import__("torch").__version__
    assert entry["numpy"] == __import__("numpy").__version__
    assert entry["gymnasium"] == __import__("gymnasium").__version__
    assert entry["device"] == "cpu" and entry["torch_threads"] >= 1
    for key in ("commit", "python", "hostname", "device_name", "mujoco", "cwd"):
        assert key in entry
    resume(run, config(iterations=2), progress=False)
    sessions = json.loads((run / "run.json").read_text())["sessions"]
    assert sessions[0] == entry  # the first session is kept as it was
    assert sessions[1]["kind"] == "resume" and sessions[1]["resumed_after"] == 0
    assert sessions[1]["outcome"] == "completed"


def test_the_stop_line_names_resume_plot_and_eval(tmp_path, monkeypatch, capsys):
    ctrl_c_in_iteration(monkeypatch, 1)
    run = tmp_path / "run"
    assert main(["train", "--env", TOY, *FLAGS, "--iterations", "3", "--quiet",
                 "--out", str(run)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"dynaplan: stopped by SIGINT after iteration 0; resume with: dynaplan train --resume "
        f"{run}; figures: dynaplan plot {run}; a video of its planner: dynaplan eval {run} "
        "--video")
    session = json.loads((run / "run.json").read_text())["sessions"][0]
    assert session["outcome"] == "stopped by SIGINT after iteration 0"
    # the stopped run has its figures, drawn after iteration 0
    for name in ("return.png", "dynamics_loss.png", "reward_loss.png", "diagnostics.png"):
        assert (run / "plots" / name).stat().st_size > 10_000, name


def test_a_stop_before_the_first_checkpoint_names_resume_only(tmp_path, monkeypatch, capsys):
    def collect_with_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(loop, "collect_random", collect_with_ctrl_c)
    run = tmp_path / "run"
    assert main(["train", *CLI_TINY, "--out", str(run)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"dynaplan: stopped by SIGINT before the first checkpoint; resume with: dynaplan "
        f"train --resume {run}")
