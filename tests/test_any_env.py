"""Bringing your own environment: "module:EnvId" ids, env kwargs (flag, --config, sweep
spec), factories and instances from Python, what a run records for each, and what eval
and resume of such a run need; every refusal one line. The env is tests/toy_envs.py
(ToyPoint-v0: observation [x, goal], reward -(x - goal)^2, 10-step episodes)."""

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import toy_envs
from resume_helpers import metrics, newest
from test_cli import main_config

from dynaplan.app.cli import main
from dynaplan.app.eval import evaluate_run
from dynaplan.app.sweep_spec import expand, read_spec
from dynaplan.config import config_from_values, from_dict, to_dict
from dynaplan.envs import env_id, env_source, known_reward, known_termination
from dynaplan.errors import ConfigError
from dynaplan.loop import resume, train
from dynaplan.runs import load_agent, load_run_config

TOY = "toy_envs:ToyPoint-v0"
TINY = {"iterations": 1, "random_trajectories": 1, "steps_per_iteration": 20, "horizon": 3,
        "num_sequences": 10, "num_iterations": 2, "num_elites": 2, "epochs": 1,
        "batch_size": 64, "video_every": 0, "device": "cpu"}
FLAGS = [x for k, v in TINY.items() for x in (f"--{k.replace('_', '-')}", str(v))] + ["--quiet"]
QUIET = dict(progress=False, echo=lambda *_: None)


def config(**values):
    return config_from_values({**TINY, **values})


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if "warning" not in line]
    assert len(err) == 1 and err[0].startswith("dynaplan: error: "), err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A CLI run of the toy env through its module, with goal 30 (far from where x starts)."""
    out = tmp_path_factory.mktemp("toy") / "run"
    assert main(["train", "--env", TOY, "--env-kwargs", '{"goal": 30}', *FLAGS,
                 "--out", str(out)]) == 0
    return out


def test_a_module_id_from_the_cli_records_its_env_and_kwargs(toy_run):
    stored = json.loads((toy_run / "config.json").read_text())
    assert stored["env"] == TOY and stored["env_kwargs"] == {"goal": 30}
    # the kwarg reached the env: every observation holds the goal, returns are far below 0
    obs = newest(toy_run).buffer.obs
    assert len(obs) == 30 and np.all(obs[:, 1] == 30)
    assert float(metrics(toy_run)[0]["train/return"]) < -5000


def test_the_run_evaluates_and_resumes_from_the_cli(toy_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    assert main(["eval", str(run), "--episodes", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2 and result["return_max"] < -5000  # the goal-30 env
    assert main(["train", "--resume", str(run), "--iterations", "2", "--quiet"]) == 0
    assert [r["iteration"] for r in metrics(run)] == ["0", "1"]
    assert load_run_config(run).env_kwargs == {"goal": 30}
    # a resumed run keeps its kwargs
    assert main(["train", "--resume", str(run), "--iterations", "3",
                 "--env-kwargs", '{"goal": 1}']) == 2
    one_line_error(capsys, "--env-kwargs", "contradicts the run's config")


def test_env_kwargs_from_a_config_file_and_flags_over_it(tmp_path, capsys):
    path = tmp_path / "options.yaml"
    path.write_text(f"env: {TOY}\nenv_kwargs:\n  goal: -5\n  unused: [1, 2]\n")
    assert main_config(["--config", str(path)]).env_kwargs == {"goal": -5, "unused": [1, 2]}
    assert main_config(["--config", str(path), "--env-kwargs", "{goal: 2}"]).env_kwargs == \
        {"goal": 2}
    path.write_text("env_kwargs: 3\n")
    assert main(["train", "--config", str(path)]) == 2
    one_line_error(capsys, f"config file {path}", "env_kwargs must be a mapping")


def test_kwargs_are_stored_hashable_and_old_configs_read_without_them():
    c = config(env=TOY, env_kwargs={"goal": 1.5, "nested": {"a": [1, 2]}})
    stored = json.loads(json.dumps(to_dict(c)))
    assert stored["env_kwargs"] == {"goal": 1.5, "nested": {"a": [1, 2]}}
    assert from_dict(stored) == c and hash(from_dict(stored)) == hash(c)
    del stored["env_kwargs"]  # a config.json of a dynaplan before env_kwargs
    assert from_dict(stored).env_kwargs == {}
    # what a caller does with a value read from it does not change the config
    c.env_kwargs["nested"]["a"].append(3)
    assert c.env_kwargs["nested"] == {"a": [1, 2]}


def test_kwargs_reach_the_environment_and_a_factory():
    for maker in (TOY, "toy_envs:make_toy", toy_envs.make_toy):
        env, spec = env_source(TOY, {"goal": 2.5}, maker).make()
        obs, _ = env.reset(seed=0)
        _, reward, *_ = env.step(np.zeros(1, np.float32))
        assert obs[1] == 2.5 and reward == pytest.approx(-((obs[0] - 2.5) ** 2))
        assert (spec.obs_dim, spec.action_dim) == (2, 1)
        env.close()


def test_train_from_python_with_an_id_string(tmp_path):
    result = train(config(), tmp_path / "run", env=TOY, **QUIET)
    assert load_run_config(result.run_dir).env == TOY


def test_an_importable_factory_is_recorded_by_name_and_the_cli_uses_it(tmp_path, capsys):
    run = tmp_path / "run"
    train(config(env_kwargs={"goal": -20}, eval_episodes=1, video_every=1), run,
          env=toy_envs.make_toy, **QUIET)
    assert load_run_config(run).env == "toy_envs:make_toy"
    assert (run / "videos" / "iteration_0000.mp4").stat().st_size > 0  # it took render_mode
    assert float(metrics(run)[0]["eval/return"]) < -3000  # the eval envs got the kwargs
    assert main(["eval", str(run), "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["return_max"] < -3000
    assert main(["train", "--resume", str(run), "--iterations", "2", "--quiet"]) == 0


def test_a_factory_no_name_makes_trains_and_must_be_passed_again(tmp_path, capsys):
    calls = []

    def make(goal=0.0, render_mode=None):
        calls.append(render_mode)
        return toy_envs.make_toy(goal, render_mode)

    run = tmp_path / "run"
    train(config(eval_episodes=2, video_every=1), run, env=make, **QUIET)
    # once per env the run needs: the training env (rendering) and two evaluation envs
    assert calls == ["rgb_array", None, None]
    name = load_run_config(run).env
    assert name.startswith("from-python:") and name.endswith("<locals>.make")
    assert main(["eval", str(run)]) == 2
    one_line_error(capsys, "passed from Python", "pass it again")
    assert main(["train", "--resume", str(run), "--iterations", "2"]) == 2
    one_line_error(capsys, "passed from Python")
    assert evaluate_run(run, 2, False, 0, "cpu", env=make)["episodes"] == 2
    result = resume(run, dataclasses.replace(load_run_config(run), iterations=2), env=make,
                    **QUIET)
    assert result.summary["iterations"] == 2
    with pytest.raises(ConfigError, match="not as the run's"):
        resume(run, env=toy_envs.make_toy, **QUIET)


def test_an_instance_is_the_training_env_only(tmp_path):
    instance = gym.make(TOY, goal=4.0)
    with pytest.raises(ConfigError, match="training env only; pass a factory"):
        train(config(eval_episodes=1), tmp_path / "refused", env=instance, **QUIET)
    assert not (tmp_path / "refused").exists()  # refused before anything was written
    with pytest.raises(ConfigError, match="env_kwargs cannot be applied to an env instance"):
        train(config(env_kwargs={"goal": 1}), tmp_path / "refused", env=instance, **QUIET)
    run = tmp_path / "run"
    train(config(video_every=1), run, env=instance, **QUIET)
    assert load_run_config(run).env == "from-python:ToyPoint-v0"
    assert np.all(newest(run).buffer.obs[:, 1] == 4.0)
    instance.reset(seed=0)  # still open: the caller's env is not closed
    assert load_agent(run, "cpu", env=instance).spec.obs_dim == 2
    assert evaluate_run(run, 1, False, 0, "cpu", env=instance)["episodes"] == 1
    with pytest.raises(ConfigError, match="serves as one env only"):
        evaluate_run(run, 2, False, 0, "cpu", env=gym.make(TOY))


def test_a_factory_without_render_mode_trains_without_videos(tmp_path):
    warnings = []
    run = tmp_path / "run"
    train(config(video_every=1), run, env=toy_envs.make_toy_quietly, warn=warnings.append,
          **QUIET)
    assert any("no videos" in w for w in warnings)
    assert not list((run / "videos").iterdir())


@pytest.mark.parametrize("args, needles", [
    (["--env", "no_such_module_xyz:Toy-v0"],
     ["module 'no_such_module_xyz' could not be imported",
      "ModuleNotFoundError: No module named 'no_such_module_xyz'"]),
    (["--env", "broken_env_module:Toy-v0"],
     ["could not be imported", "RuntimeError: broken on import"]),
    (["--env", "toy_envs:ToyPont-v0"],
     ["registers no environment id 'ToyPont-v0'", "did you mean ToyPoint-v0?"]),
    (["--env", TOY, "--env-kwargs", '{"speed": 1}'],
     ["'toy_envs:ToyPoint-v0' could not be created with env_kwargs {\"speed\": 1}",
      "unexpected keyword argument 'speed'"]),
    (["--env", TOY, "--env-kwargs", '{"goal": }'], ["env_kwargs is not valid JSON"]),
    (["--env", TOY, "--env-kwargs", "[1, 2]"], ["env_kwargs must be a mapping"]),
    (["--env", TOY, "--env-kwargs", '{"render_mode": "human"}'],
     ["env_kwargs must not set render_mode"]),
    (["--env", "from-python:ToyPoint-v0"], ["passed from Python"]),
])
def test_bad_environments_are_refused_in_one_line(args, needles, tmp_path, capsys,
                                                  monkeypatch):
    (tmp_path / "broken_env_module.py").write_text("raise RuntimeError('broken on import\\n"
                                                   "second line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["train", *args, *FLAGS, "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys, *needles)
    assert not (tmp_path / "run").exists()


def test_a_sweep_takes_kwargs_fixed_and_as_an_axis(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    keys = "".join(f"{k}: {v}\n" for k, v in TINY.items())
    spec.write_text(f"env: {TOY}\nenv_kwargs: [{{goal: 1}}, {{goal: 2.5}}]\n{keys}")
    trials = expand(read_spec(spec)[0])
    assert [t.name for t in trials] == [
        "toy_envs_ToyPoint-v0__cem__env-kwargs-goal-1__s123",
        "toy_envs_ToyPoint-v0__cem__env-kwargs-goal-2.5__s123"]
    assert [t.config.env_kwargs for t in trials] == [{"goal": 1}, {"goal": 2.5}]
    spec.write_text(f"env: {TOY}\nenv_kwargs: {{goal: 3}}\n{keys}")
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--out", str(out), "--no-ray", "--quiet"]) == 0
    (trial,) = out.glob("toy_envs*")
    assert np.all(newest(trial).buffer.obs[:, 1] == 3)
    spec.write_text(f"env: {TOY}\nenv_kwargs: [{{speed: 1}}]\n{keys}")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "bad"), "--dry-run"]) == 2
    one_line_error(capsys, "unexpected keyword argument 'speed'")


def test_known_rewards_and_terminations_go_by_the_id_part():
    assert env_id("mypkg.envs:MyEnv-v0") == "MyEnv-v0" and env_id("Pendulum-v1") == "Pendulum-v1"
    assert known_reward("mypkg:InvertedPendulum-v5") is known_reward("InvertedPendulum-v5")
    assert known_termination("from-python:InvertedPendulum-v5") is not None
    assert config(env="mypkg:InvertedPendulum-v5", termination="known").model.termination \
        == "known"
    with pytest.raises(ConfigError, match="no known termination"):
        config(env="mypkg:Pendulum-v1", termination="known")
