"""Bad input: one line on stderr naming the problem, exit status 2, no traceback."""

import json

import pytest
from conftest import TINY, TINY_NO_DEVICE

from dynaplan.app.cli import main


def run_bad(args, capsys):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--env", "Pendulum-v9"], "unknown environment id 'Pendulum-v9' (did you mean"),
        (["--env", "CartPole-v1"], "Discrete action space"),
        (["--horizon", "0"], "horizon must be positive"),
        (["--train-episode-steps", "0"], "train_episode_steps must be a positive integer"),
        (["--horizon", "-3"], "horizon must be positive"),
        (["--num-sequences", "0"], "num_sequences must be positive"),
        (["--iterations", "0"], "iterations must be positive"),
        (["--epochs", "-1"], "epochs must be positive"),
        (["--num-elites", "20", "--num-sequences", "10"], "num_elites (20) must not exceed"),
        (["--lr", "0"], "lr must be positive"),
        (["--horizon", "2.5"], "invalid int value"),
        (["--planner", "dreamer"], "invalid choice"),
        (["--reward", "known", "--env", "Swimmer-v5"], "no known reward"),
        (["--device", "cuda"], "CUDA is not available"),
        (["--cuda-graph", "on"], "cuda_graph on needs a CUDA device"),
        (["--tf32", "on"], "tf32 on needs a CUDA device"),
    ],
)
def test_bad_train_flags(flags, words, capsys, tmp_path):
    import torch

    if "cuda" in flags and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    line = run_bad(["train", *TINY, *flags, "--out", str(tmp_path / "r")], capsys)
    assert words in line


@pytest.mark.parametrize(
    "content, suffix, words",
    [
        (None, ".yaml", "config file not found"),
        ("horizon: [1, 2\n", ".yaml", "could not be parsed"),
        ("{not json", ".json", "could not be parsed"),
        ("horizon: 5\nwarp_speed: 9\n", ".yaml", "unknown key 'warp_speed'"),
        ("horizon: five\n", ".yaml", "horizon must be an integer"),
        ("env: 3\n", ".yaml", "env must be a string"),
        ("- 1\n- 2\n", ".yaml", "must hold a mapping"),
    ],
)
def test_bad_config_files(content, suffix, words, capsys, tmp_path):
    path = tmp_path / f"c{suffix}"
    if content is not None:
        path.write_text(content)
    line = run_bad(["train", *TINY, "--config", str(path), "--out", str(tmp_path / "r")], capsys)
    assert words in line
    assert not (tmp_path / "r").exists()  # nothing written for a refused run


def test_out_that_cannot_be_written(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = run_bad(["train", *TINY, "--out", str(blocker / "run")], capsys)
    assert f"cannot create the folder {blocker / 'run'}" in line


def test_out_that_already_holds_a_run_is_not_overwritten(capsys, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"keep": "me"}))
    line = run_bad(["train", *TINY, "--out", str(out)], capsys)
    assert "already holds a run" in line
    assert json.loads((out / "config.json").read_text()) == {"keep": "me"}


def test_eval_and_plot_on_a_folder_that_is_not_a_run(capsys, tmp_path):
    assert "not a run folder" in run_bad(["eval", str(tmp_path)], capsys)
    assert "not a run folder" in run_bad(["plot", str(tmp_path)], capsys)
    assert "must be positive" in run_bad(["eval", str(tmp_path), "--episodes", "0"], capsys)


def test_missing_command_and_unknown_flag(capsys):
    run_bad([], capsys)
    assert "unrecognized arguments" in run_bad(["train", "--warp", "9"], capsys)


def test_device_auto_without_cuda_falls_back_with_a_warning(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    args = ["train", *TINY_NO_DEVICE, "--iterations", "1", "--device", "auto",
            "--out", str(tmp_path / "r")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "CUDA is not available, running on the CPU" in err
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["device"] == "cpu"


@pytest.mark.parametrize("flag", ["--cuda-graph", "--tf32"])
def test_gpu_switches_refuse_auto_on_a_cpu(flag, capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert main(["train", *TINY_NO_DEVICE, "--device", "auto", flag, "on",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    warning, error = err.strip().splitlines()
    assert "CUDA is not available, running on the CPU" in warning
    assert f"{flag} on needs a CUDA device, and this run plans on cpu" in error
    assert not (tmp_path / "r").exists()  # refused before anything was written
