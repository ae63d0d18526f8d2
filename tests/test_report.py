"""`dynaplan report`: bootstrap CI and IQM on known data, method grouping, curves on
uneven step counts, the report's tables and CSVs, and a report on real tiny runs."""

import csv
import json

import numpy as np
import pytest
from conftest import TINY

from dynaplan.app.cli import main
from dynaplan.app.report_runs import Run, aggregate, label_methods
from dynaplan.metrics import COLUMNS
from dynaplan.stats import bootstrap_ci, iqm


def test_constant_data_gives_a_zero_width_band():
    estimate, low, high = bootstrap_ci(np.full((5, 7), -123.5))
    assert np.all(estimate == -123.5) and np.all(low == -123.5) and np.all(high == -123.5)


def test_bootstrap_of_two_values_spans_them():
    # resampling {0, 1}: means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    estimate, low, high = bootstrap_ci(np.array([0.0, 1.0]))
    assert (estimate, low, high) == (0.5, 0.0, 1.0)


def test_bootstrap_ci_of_the_mean_has_the_normal_width_and_is_seeded():
    data = np.random.default_rng(1).normal(10.0, 2.0, size=400)
    estimate, low, high = bootstrap_ci(data)
    assert estimate == pytest.approx(data.mean())
    assert low < data.mean() < high
    # about +-1.96 standard errors
    assert (high - low) == pytest.approx(2 * 1.96 * data.std() / np.sqrt(400), rel=0.1)
    assert bootstrap_ci(data) == (estimate, low, high)
    assert bootstrap_ci(data, seed=1) != (estimate, low, high)


def test_iqm_averages_the_middle_half():
    assert iqm(np.array([1.0, 2.0, 3.0, 4.0, 100.0])) == 3.0  # drops 1 and 100
    assert iqm(np.array([4.0, -1.0, 2.0, 3.0])) == 2.5  # drops -1 and 4
    assert iqm(np.array([5.0])) == 5.0
    columns = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [50.0, 40.0]])
    assert np.array_equal(iqm(columns, axis=0), [2.5, 25.0])
    value, low, high = bootstrap_ci(np.array([1.0, 2.0, 3.0, 4.0, 100.0]), iqm)
    assert value == 3.0 and low <= value <= high


def make_run(x, y, **config):
    n = len(x)
    return Run(path=None, config={"env": "E", "seed": 0, **config}, iteration=np.arange(n),
               env_steps=np.asarray(x, float), returns={"train/return": np.asarray(y, float),
                                                        "eval/return": np.full(n, np.nan)},
               plan_ms=1.0)


def test_curves_on_uneven_steps_hold_each_runs_last_return():
    a = make_run([10, 20, 30], [0, 1, 2])
    b = make_run([15, 25], [10, 20], seed=1)
    steps, mean, low, high = aggregate([a, b], "train/return")
    # the steps both runs reached; a holds 0 at 15 and 1 at 25, b holds 10 at 20
    assert steps.tolist() == [15, 20, 25]
    assert mean.tolist() == [5.0, 5.5, 10.5]
    assert np.all(low <= mean) and np.all(mean <= high)


def test_methods_are_the_preset_or_the_planner_and_what_differs():
    runs = [make_run([1], [0], planner="cem", horizon=5, seed=0),
            make_run([1], [0], planner="cem", horizon=10, seed=1),
            make_run([1], [0], planner="random", horizon=5, seed=0),
            make_run([1], [0], planner="random", horizon=5, seed=1),
            make_run([1], [0], planner="cem", preset="pets", horizon=15, seed=0)]
    label_methods(runs)
    assert [r.method for r in runs] == ["cem horizon=5", "cem horizon=10", "random", "random",
                                        "pets"]


def write_run(folder, env, planner, seed, steps, returns, eval_returns=None, plan_ms=2.0,
              wall_s=None):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"env": env, "planner": planner,
                                                    "seed": seed, "preset": None}))
    with open(folder / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS, restval="nan")
        writer.writeheader()
        for i, (s, r) in enumerate(zip(steps, returns)):
            row = {"iteration": i, "env_steps": s, "train/return": r,
                   "time/plan_ms_p50": plan_ms + i}
            if eval_returns is not None:
                row["eval/return"] = eval_returns[i]
            if wall_s is not None:
                row["time/wall_s"] = wall_s[i]
            writer.writerow(row)


def test_report_tables_csvs_and_figures(tmp_path, capsys):
    root = tmp_path / "sweep"
    finals = {"cem": [-150.0, -160.0, -170.0, -180.0, -1000.0], "random": [-300.0] * 5}
    for planner, values in finals.items():
        for seed, final in enumerate(values):
            # evaluated: reaches -200 at iteration 1 (400 steps) unless final stays below
            evals = [-900.0, max(final, -190.0) if final > -200 else final, final]
            write_run(root / f"Pendulum-v1__{planner}__s{seed}", "Pendulum-v1", planner, seed,
                      [200, 400, 600], [-1.0, -2.0, -3.0], evals, wall_s=[1.0, 2.0 + seed, 9.0])
    write_run(root / "other" / "cart", "MountainCarContinuous-v0", "cem", 0, [999, 1998],
              [-5.0, 93.0])
    (root / "empty").mkdir()
    write_run(root / "not_started", "Pendulum-v1", "cem", 9, [], [])
    assert main(["report", str(root), "--threshold", "MountainCarContinuous-v0=50"]) == 0
    assert capsys.readouterr().out.strip() == str(root / "report.md")
    text = (root / "report.md").read_text()
    assert f"dynaplan report {root} --threshold MountainCarContinuous-v0=50" in text
    assert "commit `" in text and "not_started: no finished iteration yet" in text
    # cem: IQM of the middle three finals (-160, -170, -180); 4/5 seeds reach -200 at 400
    assert "| cem | 5 | 600 | -170.0 | [" in text
    # its seconds: 2, 3, 4, 5 s (time/wall_s at 400 steps) and never: median 4.0
    assert "| 400, never (4/5) | 4.0, never | 3.00 |" in text
    assert ("| random | 5 | 600 | -300.0 | [-300.0, -300.0] | -300.0 | never, never (0/5) | "
            "never, never |") in text
    assert "Return: `eval/return`. Threshold: -200." in text
    assert "Return: `train/return`. Threshold: 50." in text
    # a run without time/wall_s (older dynaplan) has no seconds
    assert "| cem | 1 | 1998 | 93.0 | [93.0, 93.0] | 93.0 | 1998, 1998 (1/1) | - |" in text
    for name in ("return_Pendulum-v1.png", "return_MountainCarContinuous-v0.png"):
        assert (root / name).stat().st_size > 10_000
    with open(root / "per_seed.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 11
    cem4 = next(r for r in rows if r["run"] == "Pendulum-v1__cem__s4")
    assert (cem4["method"], cem4["final_return"], cem4["steps_to_threshold"],
            cem4["seconds_to_threshold"], cem4["env_steps"]) == ("cem", "-1000.0", "", "", "600")
    cem1 = next(r for r in rows if r["run"] == "Pendulum-v1__cem__s1")
    assert (cem1["steps_to_threshold"], cem1["seconds_to_threshold"]) == ("400", "3.00")
    with open(root / "curves.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 10 * 3 + 2


@pytest.mark.parametrize("args, named", [
    (["missing"], "is not a folder"),
    (["."], "no run folders"),
    (["runs", "--threshold", "Pendulum-v1"], "--threshold takes ENV=VALUE"),
    (["runs", "--threshold", "Pendulum-v1=high"], "--threshold takes ENV=VALUE"),
    (["runs", "--threshold", "Hopper-v5=3000"], "no runs of Hopper-v5"),
])
def test_bad_report_input_is_one_line(tmp_path, monkeypatch, capsys, args, named):
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "a", "Pendulum-v1", "cem", 0, [200], [-1.0])
    (tmp_path / "empty").mkdir()
    args = [a if a != "." else str(tmp_path / "empty") for a in args]
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dynaplan: error: ") and err.count("\n") == 1 and named in err


def test_report_on_real_tiny_runs(tmp_path, capsys):
    root = tmp_path / "runs"
    for planner in ("cem", "random"):
        assert main(["train", *TINY, "--iterations", "1", "--planner", planner,
                     "--seed", "0", "--out", str(root / planner)]) == 0
    assert main(["report", str(root), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Return: `train/return`" in text
    assert "| cem | 1 | 400 |" in text and "| random | 1 | 400 |" in text
    assert (tmp_path / "report" / "return_Pendulum-v1.png").is_file()
    assert not (root / "report.md").exists()
