"""Every command in-process on a tiny budget; determinism; the run folder's contents."""

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest
from conftest import TINY

from dynaplan.app.cli import main
from dynaplan.config import TrainConfig, to_flat
from dynaplan.metrics import read_metrics
from dynaplan.runs import load_run_config


def read_rows(path, drop_timing=True):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if not (drop_timing and k.startswith("time/"))}
            for r in rows]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    code = main(["train", *TINY, "--eval-episodes", "2", "--video-every", "1",
                 "--seed", "5", "--out", str(out)])
    assert code == 0
    return out


def test_train_writes_the_run_folder(run_dir):
    for name in ("config.json", "metrics.csv", "summary.json", "episodes.csv",
                 "checkpoints/iter_000001/state.json", "checkpoints/iter_000001/tensors.pt",
                 "checkpoints/iter_000001/buffer.npz", "plots/return.png",
                 "plots/dynamics_loss.png", "plots/reward_loss.png",
                 "videos/iteration_0000.mp4", "videos/iteration_0001.mp4"):
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    config = to_flat(load_run_config(run_dir))
    assert config["seed"] == 5 and config["horizon"] == 3
    rows = read_rows(run_dir / "metrics.csv", drop_timing=False)
    assert [int(r["iteration"]) for r in rows] == [0, 1]
    # 1 random episode + 1 planned episode per iteration, 200 steps each
    assert [int(r["env_steps"]) for r in rows] == [400, 600]
    for r in rows:
        assert float(r["eval/return_min"]) <= float(r["eval/return"]) <= float(r["eval/return_max"])
        assert float(r["time/plan_ms_p50"]) > 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 600 and summary["plan_ms_p50"] > 0


def test_same_seed_same_metrics(run_dir, tmp_path):
    again = tmp_path / "again"
    assert main(["train", *TINY, "--eval-episodes", "2", "--video-every", "1",
                 "--seed", "5", "--out", str(again)]) == 0
    assert read_rows(again / "metrics.csv") == read_rows(run_dir / "metrics.csv")
    other = tmp_path / "other"
    assert main(["train", *TINY, "--eval-episodes", "2", "--seed", "6", "--out", str(other)]) == 0
    assert read_rows(other / "metrics.csv") != read_rows(run_dir / "metrics.csv")


def test_eval_loads_the_checkpoint(run_dir, capsys):
    assert main(["eval", str(run_dir), "--episodes", "2", "--json", "--video"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2 and len(result["returns"]) == 2
    assert result["checkpoint_iteration"] == 1
    assert (run_dir / "videos" / "eval.mp4").stat().st_size > 0


def test_eval_prints_one_line_and_a_progress_bar_unless_quiet(run_dir, capsys):
    assert main(["eval", str(run_dir), "--episodes", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert main(["eval", str(run_dir), "--episodes", "2"]) == 0
    out, err = capsys.readouterr()
    # the same episodes as --json's (fixed reset seeds, the same planner seed), in words
    low, high = min(result["returns"]), max(result["returns"])
    assert out.splitlines() == [
        f"Pendulum-v1, checkpoint of iteration 1 (600 env steps): return "
        f"{result['return_mean']:.1f} mean over 2 episodes (min {low:.1f}, max {high:.1f}), "
        f"plan {float(out.split('plan ')[1].split(' ms')[0]):.1f} ms p50"]
    assert "eval 2 episodes" in err and "200/200" in err  # the bar: Pendulum's 200 steps
    assert main(["eval", str(run_dir), "--episodes", "1", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "mean over 1 episode (" in out


def test_eval_summary_counts_failed_episodes_and_names_the_video():
    from dynaplan.app.eval import summary_line

    result = {"checkpoint_iteration": 3, "env_steps": None, "returns": [-10.0, float("nan")],
              "plan_ms_p50": 1.25, "video": "run/videos/eval.mp4"}
    assert summary_line("Toy-v0", result) == (
        "Toy-v0, checkpoint of iteration 3: return -10.0 mean over 1 episode (min -10.0, max "
        "-10.0), 1 of 2 failed, plan 1.2 ms p50, video run/videos/eval.mp4")
    result["returns"] = [float("nan")] * 2
    assert summary_line("Toy-v0", result).startswith("Toy-v0, checkpoint of iteration 3: all 2 "
                                                     "episodes failed")


def test_train_episode_steps_caps_training_episodes_only(tmp_path, monkeypatch):
    import dynaplan.envs.source as source

    made = []
    real = source.make_env
    monkeypatch.setattr(source, "make_env",
                        lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    run = tmp_path / "run"
    assert main(["train", *TINY, "--train-episode-steps", "30", "--steps-per-iteration", "45",
                 "--eval-episodes", "1", "--out", str(run)]) == 0
    with open(run / "episodes.csv", newline="") as fh:
        lengths = [int(r["length"]) for r in csv.DictReader(fh)]
    # Pendulum-v1 never terminates: every training episode is cut at 30 steps, and an
    # iteration plays whole episodes until it has 45 steps
    assert lengths == [30, 30, 30, 30]
    assert [int(r["env_steps"]) for r in read_rows(run / "metrics.csv")] == [90, 150]
    train_env, eval_env = (env for env, _ in made)
    assert (train_env.spec.max_episode_steps, eval_env.spec.max_episode_steps) == (30, 200)


def test_eval_of_one_iterations_checkpoint(run_dir, capsys):
    results = {}
    for args in (["--iteration", "0"], ["--iteration", "1"], []):
        assert main(["eval", str(run_dir), "--episodes", "2", "--json", *args]) == 0
        results[tuple(args)] = json.loads(capsys.readouterr().out)
    first, second, newest = results.values()
    # the steps are the run's at the end of that iteration, as eval/return counts them
    assert (first["checkpoint_iteration"], first["env_steps"]) == (0, 400)
    assert (second["checkpoint_iteration"], second["env_steps"]) == (1, 600)
    assert second["returns"] == newest["returns"]  # the newest checkpoint is iteration 1
    assert first["returns"] != second["returns"]  # other models, other episodes


def test_eval_of_an_iteration_that_is_not_kept(run_dir, capsys):
    assert main(["eval", str(run_dir), "--iteration", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "no checkpoint of iteration 7" in err and "(kept: 0, 1;" in err
    assert main(["eval", str(run_dir), "--iteration", "-1"]) == 2
    assert "--iteration must be 0 or more" in capsys.readouterr().err


def test_plot_redraws_figures(run_dir, tmp_path, capsys):
    second = tmp_path / "second"
    shutil.copytree(run_dir, second)
    shutil.rmtree(second / "plots")
    overlay = tmp_path / "overlay.png"
    assert main(["plot", str(run_dir), str(second), "--out", str(overlay)]) == 0
    assert (second / "plots" / "return.png").is_file() and overlay.is_file()


def test_compare_draws_one_figure_and_a_table(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = [a for a in TINY if a != "--quiet"]
    code = main(["compare", "--planners", "cem", "random", "--seeds", "0", "1",
                 *args, "--iterations", "1", "--quiet", "--out", str(out)])
    assert code == 0
    assert (out / "returns.png").is_file()
    for trial in ("cem__s0", "cem__s1", "random__s0", "random__s1"):
        assert (out / trial / "metrics.csv").is_file()
    with open(out / "final_returns.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["planner"] for r in table] == ["cem", "random"]
    assert "| cem |" in capsys.readouterr().out


def test_config_file_sets_options_and_flags_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("horizon: 4\nnum-sequences: 12\nplanner: random\n")
    out = tmp_path / "r"
    assert main(["train", *TINY, "--config", str(cfg), "--num-sequences", "9",
                 "--out", str(out)]) == 0
    config = to_flat(load_run_config(out))
    # TINY sets --horizon 3 on the command line, which wins over the file's 4
    assert (config["horizon"], config["num_sequences"], config["planner"]) == (3, 9, "random")
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"epochs": 1, "lr": 1}))
    assert main(["train", *TINY, "--config", str(js), "--out", str(tmp_path / "j")]) == 0
    assert load_run_config(tmp_path / "j").model.lr == 1.0


def test_no_flags_is_the_seed_exercise():
    assert main_config([]) == TrainConfig()
    c = to_flat(TrainConfig())
    assert [c[k] for k in ("env", "planner", "random_trajectories", "horizon",
                           "num_sequences")] == ["Pendulum-v1", "cem", 10, 15, 100]
    assert [c[k] for k in ("iterations", "steps_per_iteration", "seed", "num_iterations",
                           "num_elites")] == [100, 200, 123, 5, 10]
    assert [c[k] for k in ("epochs", "batch_size", "lr", "valid_fraction",
                           "input_noise")] == [50, 2000, 3e-4, 0.2, 0.001]
    assert c["reward"] == "learned" and c["dynamics"] == "mlp"


def main_config(argv):
    """The config `dynaplan train ARGV` would run."""
    from dynaplan.app.cli import build_parser
    from dynaplan.app.flags import config_from_args

    return config_from_args(build_parser().parse_args(["train", *argv]))


@pytest.mark.parametrize("command", ["train", "compare", "eval", "plot"])
def test_help_lists_every_flag_with_a_description(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    if command in ("train", "compare"):
        for flag in ("--env", "--horizon", "--num-sequences", "--cem-iterations",
                     "--num-elites", "--epochs", "--batch-size", "--lr", "--device",
                     "--config", "--eval-episodes", "--video-every", "--reward", "--quiet",
                     "--iterations", "--steps-per-iteration", "--random-trajectories", "--out"):
            assert flag in text, flag
    if command == "train":
        assert "--planner" in text and "--seed" in text


def test_installed_console_script():
    if shutil.which("dynaplan") is None:
        pytest.skip("dynaplan console script not on PATH (package not installed)")
    result = subprocess.run(["dynaplan", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--horizon" in result.stdout


def test_eval_every_evaluates_every_kth_and_the_last_iteration(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--iterations", "4", "--eval-episodes", "1", "--eval-every", "3",
                 "--out", str(out)]) == 0
    metrics = read_metrics(out / "metrics.csv")
    assert metrics["iteration"] == [0.0, 1.0, 2.0, 3.0]
    evaluated = [np.isfinite(v) for v in metrics["eval/return"]]
    assert evaluated == [False, False, True, True]  # the 3rd and the last
    assert (out / "plots" / "return.png").is_file()
