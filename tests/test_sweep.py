"""`dynaplan sweep`: grid expansion, refusal before any trial starts, skipping finished
trials, resuming interrupted ones, and two trials at once on a local Ray instance."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from dynaplan.app import sweep as sweep_module
from dynaplan.app.cli import main
from dynaplan.app.sweep_spec import expand, read_spec

# the tiny budget of conftest.TINY, as spec keys (iterations set per test)
TINY_SPEC = """\
env: Pendulum-v1
random-trajectories: 1
steps-per-iteration: 1
horizon: 3
num-sequences: 8
cem-iterations: 2
num-elites: 2
epochs: 2
batch-size: 64
video-every: 0
device: cpu
"""


def read_rows(path):
    """metrics.csv without its timing columns."""
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if not k.startswith("time/")}
                for r in csv.DictReader(fh)]


def write_spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_grid_expands_every_combination_with_readable_stable_names(tmp_path):
    spec = write_spec(tmp_path, "env: [Pendulum-v1, MountainCarContinuous-v0]\n"
                                "planner: [cem, random]\nseed: [0, 1]\nhorizon: [5, 10]\n"
                                "iterations: 3\neval-episodes: 2\n")
    values, out = read_spec(spec)
    trials = expand(values)
    assert out is None and len(trials) == 16
    # env outermost, seed innermost; planner named without its key, other axes with theirs
    assert [t.name for t in trials[:4]] == [
        "Pendulum-v1__cem__horizon-5__s0", "Pendulum-v1__cem__horizon-5__s1",
        "Pendulum-v1__cem__horizon-10__s0", "Pendulum-v1__cem__horizon-10__s1"]
    assert trials[-1].name == "MountainCarContinuous-v0__random__horizon-10__s1"
    t = trials[5]
    assert (t.config.env, t.config.planner.name, t.config.planner.horizon, t.config.seed) == (
        "Pendulum-v1", "random", 5, 1)
    assert t.axes == {"env": "Pendulum-v1", "planner": "random", "horizon": 5, "seed": 1}
    assert all(t.config.iterations == 3 and t.config.eval_episodes == 2 for t in trials)
    assert [t.name for t in expand(read_spec(spec)[0])] == [t.name for t in trials]


def test_presets_name_the_trials_and_set_their_options(tmp_path):
    spec = write_spec(tmp_path, "env: Pendulum-v1\npreset: [pets, icem]\nseed: 3\n"
                                "iterations: 1\n")
    trials = expand(read_spec(spec)[0])
    assert [t.name for t in trials] == ["Pendulum-v1__pets__s3", "Pendulum-v1__icem__s3"]
    assert [t.config.planner.name for t in trials] == ["cem", "icem"]
    assert all(t.config.model.dynamics == "ensemble" and t.config.iterations == 1
               for t in trials)


def test_dry_run_lists_the_trials_and_runs_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path, "planner: [cem, random]\nseed: [0, 1]\n")
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{out / name}  (new)" for name in (
        "Pendulum-v1__cem__s0", "Pendulum-v1__cem__s1", "Pendulum-v1__random__s0",
        "Pendulum-v1__random__s1")]
    assert not out.exists()


@pytest.mark.parametrize("text, named", [
    ("planner: [cem, random]\nhorizn: 5\n", "'horizn'"),
    ("planner: [cem, bogus]\n", "planner must be one of"),
    ("num-sequences: [4, 100]\nnum-elites: 10\n", "num_elites (10) must not exceed"),
    ("seed: []\n", "seed is an empty list"),
    ("seed: [0, 0]\n", "seed lists a value twice"),
    ("env: [Pendulum-v1, Pendulum-v9]\n", "unknown environment id 'Pendulum-v9'"),
    ("horizon: {a: 1}\n", "horizon must be a value or a list"),
    ("out: 5\n", "out must be a folder name"),
    ("iterations: 2\n- x\n", "could not be parsed"),
])
def test_bad_spec_is_refused_in_one_line_before_any_trial_starts(tmp_path, capsys, text, named):
    spec = write_spec(tmp_path, TINY_SPEC.replace("env: Pendulum-v1\n", "") + text)
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--out", str(out), "--no-ray", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dynaplan: error: ") and err.count("\n") == 1, err
    assert named in err and "Traceback" not in err
    assert not out.exists()  # nothing started


def test_bad_options_are_refused(tmp_path, capsys):
    spec = write_spec(tmp_path, "seed: [0, 1]\n")
    for extra in (["--max-concurrent", "0"], ["--no-ray", "--address", "auto"]):
        assert main(["sweep", str(spec), "--out", str(tmp_path / "s"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("dynaplan: error: ") and err.count("\n") == 1


def test_rerun_skips_finished_trials_and_resumes_interrupted_ones(tmp_path, capsys,
                                                                  monkeypatch):
    spec = write_spec(tmp_path, TINY_SPEC + "iterations: 2\nplanner: [cem, random]\nseed: 4\n"
                      f"out: {tmp_path / 'sweep'}\n")
    out = tmp_path / "sweep"
    cem, rnd = out / "Pendulum-v1__cem__s4", out / "Pendulum-v1__random__s4"
    # without ray the trials run one after another in-process, and the sweep says so
    monkeypatch.setattr(sweep_module, "_ray_available", lambda: False)
    assert main(["sweep", str(spec), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "ray is not installed" in captured.err and captured.err.count("\n") == 1
    assert "[2/2]" in captured.out
    for run in (cem, rnd):
        assert json.loads((run / "summary.json").read_text())["iterations"] == 2
        assert (run / "plots" / "return.png").is_file()
    record = json.loads((out / "sweep.json").read_text())
    assert record["executor"] == "in-process" and record["spec"]["planner"] == ["cem", "random"]
    assert [t["status"] for t in record["trials"]] == ["trained", "trained"]
    assert record["commit"] and record["command"].startswith("dynaplan sweep ")
    uninterrupted = read_rows(cem / "metrics.csv")
    random_rows = read_rows(rnd / "metrics.csv")

    # cem killed during iteration 1 (its checkpoint of iteration 0 kept), random finished
    (cem / "summary.json").unlink()
    shutil.rmtree(cem / "checkpoints" / "iter_000001")
    finished_mtime = (rnd / "metrics.csv").stat().st_mtime_ns
    assert main(["sweep", str(spec), "--no-ray", "--quiet"]) == 0
    lines = capsys.readouterr().out
    assert "Pendulum-v1__random__s4: already finished, skipped" in lines
    assert "Pendulum-v1__cem__s4: resumed after iteration 0, finished" in lines
    assert (rnd / "metrics.csv").stat().st_mtime_ns == finished_mtime
    assert read_rows(cem / "metrics.csv") == uninterrupted  # as if never stopped

    # random killed before its first checkpoint: run again from the start
    (rnd / "summary.json").unlink()
    shutil.rmtree(rnd / "checkpoints")
    assert main(["sweep", str(spec), "--no-ray", "--quiet"]) == 0
    lines = capsys.readouterr().out
    assert "Pendulum-v1__random__s4: resumed from the start, no checkpoint yet" in lines
    assert "Pendulum-v1__cem__s4: already finished, skipped" in lines
    assert read_rows(rnd / "metrics.csv") == random_rows

    # a trial folder holding a run with other options is refused before anything runs
    spec.write_text(spec.read_text().replace("horizon: 3", "horizon: 4"))
    assert main(["sweep", str(spec), "--no-ray", "--quiet"]) == 2
    assert "holds a run with other options (horizon: 3" in capsys.readouterr().err


def test_two_trials_run_at_once_on_a_local_ray_instance(tmp_path, capsys):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'dynaplan[ray]' "
                                            "to run the sweep on Ray")
    spec = write_spec(tmp_path, TINY_SPEC + "iterations: 1\nseed: [0, 1]\n")
    out = tmp_path / "sweep"
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        assert main(["sweep", str(spec), "--out", str(out), "--max-concurrent", "2",
                     "--quiet"]) == 0
    finally:
        ray.shutdown()
    record = json.loads((out / "sweep.json").read_text())
    assert "2 trials at once, 1 torch thread each" in record["executor"]
    trials = record["trials"]
    assert [t["status"] for t in trials] == ["trained", "trained"]
    assert trials[0]["pid"] != trials[1]["pid"] and all(t["threads"] == 1 for t in trials)
    # both were running at the same time
    assert max(t["started"] for t in trials) < min(t["ended"] for t in trials)
    for t in trials:
        assert json.loads((out / t["name"] / "summary.json").read_text())["iterations"] == 1
    assert "[2/2]" in capsys.readouterr().out
