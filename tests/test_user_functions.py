"""Your own reward and termination (docs/rewards.md): `--reward module:function`,
`--termination module:function`, `dynaplan.register_reward` / `register_termination`,
refusals in one line at validation, and the check of the functions against the
environment on the run's random (or, resumed, recorded) transitions."""

import contextlib
import dataclasses
import importlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY

import dynaplan
from dynaplan.app.cli import main
from dynaplan.build import learns_termination
from dynaplan.config import ModelConfig, TrainConfig, config_from_values
from dynaplan.data import ReplayBuffer
from dynaplan.envs import (
    KNOWN_REWARDS,
    KNOWN_TERMINATIONS,
    make_env,
    resolve_reward,
    resolve_termination,
)
from dynaplan.envs.check import check_functions
from dynaplan.envs.rewards import pendulum_reward
from dynaplan.envs.terminations import inverted_pendulum_termination
from dynaplan.episodes import collect_random
from dynaplan.errors import ConfigError
from dynaplan.loop import resume, train
from dynaplan.runs import load_agent

ROOT = Path(__file__).resolve().parents[1]
FAST = [*TINY, "--iterations", "1", "--train-episode-steps", "50"]
"""One iteration of one 50-step episode after one 50-step random episode."""
SIZES = dict(iterations=1, random_trajectories=1, steps_per_iteration=1, horizon=3,
             num_sequences=8, num_iterations=2, num_elites=2, epochs=2, batch_size=64,
             video_every=0, device="cpu", train_episode_steps=50)
"""FAST, as the option values a config from Python takes."""
FNS = "tests.user_fns"


def user_fn(name):
    return getattr(importlib.import_module(FNS), name)


@pytest.fixture(autouse=True)
def _from_the_repository(monkeypatch):
    """`tests.user_fns` imports from the repository's root, as a user's module from the
    folder they run dynaplan in."""
    monkeypatch.chdir(ROOT)


@pytest.fixture
def registry():
    """Registrations made by a test are undone after it."""
    rewards, terminations = dict(KNOWN_REWARDS), dict(KNOWN_TERMINATIONS)
    yield
    KNOWN_REWARDS.clear()
    KNOWN_REWARDS.update(rewards)
    KNOWN_TERMINATIONS.clear()
    KNOWN_TERMINATIONS.update(terminations)


@pytest.fixture(scope="module")
def fn_run(tmp_path_factory):
    """A Pendulum-v1 run planned with `--reward tests.user_fns:good_reward` from the command
    line, and what it wrote on stderr."""
    out = tmp_path_factory.mktemp("fn") / "run"
    err, here = io.StringIO(), os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stderr(err):
            code = main(["train", *FAST, "--reward", f"{FNS}:good_reward", "--out", str(out)])
    finally:
        os.chdir(here)
    assert code == 0, err.getvalue()
    return out, err.getvalue()


def quiet(**kwargs):
    return dict(progress=False, echo=lambda *a: None, **kwargs)


def tiny_config(**values):
    return config_from_values({**SIZES, **values})


def run_bad(args, capsys):
    code = main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- module:function ----------------------------------------------------------------------

def test_a_reward_function_from_the_command_line_plans_and_is_stored_as_given(fn_run):
    run, err = fn_run
    assert "warning" not in err  # it agrees with Pendulum-v1's own reward
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["reward"] == f"{FNS}:good_reward"
    loaded = load_agent(run, "cpu")
    assert loaded.agent.planner.objective.reward is user_fn("good_reward")


def test_a_run_with_a_module_function_evaluates_and_resumes(fn_run, tmp_path, capsys):
    run, _ = fn_run
    assert main(["eval", str(run), "--episodes", "1", "--json", "--device", "cpu"]) == 0
    assert len(json.loads(capsys.readouterr().out)["returns"]) == 1
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main(["train", "--resume", str(copy), "--iterations", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err, err
    assert len((copy / "metrics.csv").read_text().splitlines()) == 3  # header + 2 iterations


def test_a_wrong_reward_from_python_warns_with_the_size_of_the_gap(tmp_path):
    config = tiny_config(reward=f"{FNS}:wrong_reward")
    assert isinstance(config.model, ModelConfig) and ":" in config.model.reward
    warnings: list[str] = []
    train(config, tmp_path / "run", warn=warnings.append, **quiet())
    gap = re.compile(rf"reward {FNS}:wrong_reward differs from Pendulum-v1's own reward on "
                     rf"(\d+) of 50 (random|recorded) transitions \(max \|gap\| ([\d.]+), "
                     rf"mean \|gap\| ([\d.]+)\)")
    found = [m for m in map(gap.match, warnings) if m]
    assert len(found) == 1 and found[0][2] == "random", warnings
    count, largest, mean = int(found[0][1]), float(found[0][3]), float(found[0][4])
    assert 0 < count <= 50 and largest >= mean > 0
    # resumed, the same check runs on the restored buffer (100 transitions by then)
    warnings.clear()
    resume(tmp_path / "run", dataclasses.replace(config, iterations=2), warn=warnings.append,
           **quiet())
    assert any(re.search(r"on \d+ of 100 recorded transitions", w) for w in warnings), warnings


def random_data(env_id, episodes=8, seed=0):
    env, spec = make_env(env_id)
    buffer = ReplayBuffer(spec.obs_dim, spec.action_dim)
    collect_random(env, buffer, episodes, seed, progress=False)
    env.close()
    return buffer.tensors()


def test_a_termination_is_checked_against_the_terminated_flag():
    data = random_data("InvertedPendulum-v5")
    ends = int(data.terminated.sum())
    assert ends == 8  # every random episode of it falls
    warnings: list[str] = []
    for right in (f"{FNS}:upright_termination", "known", "auto"):
        check_functions("InvertedPendulum-v5", "learned", right, data, warnings.append)
    assert warnings == []
    check_functions("InvertedPendulum-v5", "learned", f"{FNS}:never_termination", data,
                    warnings.append)
    n = len(data.obs)
    assert warnings == [
        f"termination {FNS}:never_termination disagrees with InvertedPendulum-v5's "
        f"terminated flag on {ends} of {n} random transitions (it predicts 0 of the "
        f"environment's {ends} terminations, and 0 where the environment goes on)"]
    with pytest.raises(ConfigError, match="float_termination returned float32 values; a "
                                          "termination returns bool"):
        check_functions("InvertedPendulum-v5", "learned", f"{FNS}:float_termination", data,
                        warnings.append)


def test_the_shaped_reward_is_checked_for_shape_only():
    warnings: list[str] = []
    check_functions("InvertedPendulum-v5", "shaped", "none", random_data("InvertedPendulum-v5"),
                    warnings.append)
    assert warnings == []  # it differs from the env's reward on purpose


def test_a_check_draws_from_no_generator_and_leaves_the_data_alone():
    data = random_data("Pendulum-v1", episodes=1)
    before = [t.clone() for t in (data.obs, data.action, data.next_obs, data.reward)]
    state = torch.get_rng_state()
    check_functions("Pendulum-v1", "known", "none", data, lambda m: pytest.fail(m))
    assert torch.equal(torch.get_rng_state(), state)
    for t, was in zip((data.obs, data.action, data.next_obs, data.reward), before):
        assert torch.equal(t, was)


@pytest.mark.parametrize("name, words", [
    ("wrong_shape_reward", "returned shape [50, 1] for 50 random transitions; it must "
                           "return [50], one value per transition"),
    ("flat_only_reward", "returned shape [2, 3] for a [2, 25] batch of transitions (it must "
                         "broadcast over leading dims"),
    ("nan_reward", "non-finite values (nan or inf) of 50 for 50 random transitions"),
    ("raising_reward", "raised ValueError on the random transitions: this reward is not "
                       "written yet"),
    ("numpy_reward", "returned a value of type ndarray, not a torch tensor"),
])
def test_a_faulty_reward_is_refused_in_one_line_naming_it(name, words, capsys, tmp_path):
    line = run_bad(["train", *FAST, "--reward", f"{FNS}:{name}", "--out", str(tmp_path / "r")],
                   capsys)
    assert line.startswith(f"dynaplan: error: reward {FNS}:{name} ") and words in line, line


# -- refused at validation ----------------------------------------------------------------

@pytest.mark.parametrize("flags, words", [
    (["--reward", "lerned"],
     "reward must be one of learned, known, shaped or module:function, got 'lerned'"),
    (["--termination", "never"],
     "termination must be one of auto, none, known, learned or module:function, got 'never'"),
    (["--reward", f"{FNS}:nope"], f"reward {FNS}:nope: module {FNS} has no attribute 'nope'"),
    (["--reward", "tests.no_such_module:reward"],
     "reward tests.no_such_module:reward: no module named 'tests.no_such_module'"),
    (["--termination", f"{FNS}:NOT_CALLABLE"],
     f"termination {FNS}:NOT_CALLABLE: NOT_CALLABLE is not callable (it is a int)"),
    (["--env", "Reacher-v5", "--reward", "known"],
     "reward known: Reacher-v5 has no known reward (known for"),
    (["--termination", "known"], "termination known: Pendulum-v1 has no known termination"),
])
def test_bad_values_are_refused_before_the_run_starts(flags, words, capsys, tmp_path):
    out = tmp_path / "r"
    line = run_bad(["train", *FAST, *flags, "--out", str(out)], capsys)
    assert words in line, line
    assert not out.exists()


def test_a_missing_known_function_names_how_to_give_one():
    with pytest.raises(ConfigError, match=r"give one with --reward module:function or "
                                          r"dynaplan\.register_reward\(env_id, fn\)"):
        TrainConfig(env="Reacher-v5", model=ModelConfig(reward="known"))
    with pytest.raises(ConfigError, match=r"give one with --termination module:function or "
                                          r"dynaplan\.register_termination\(env_id, fn\)"):
        TrainConfig(model=ModelConfig(termination="known"))


def test_help_shows_the_function_form(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "{learned,known,shaped,module:function}" in out
    assert "{auto,none,known,learned,module:function}" in out


# -- registration -------------------------------------------------------------------------

def test_register_reward_makes_known_work_and_agree(registry, tmp_path):
    reacher = user_fn("reacher_reward")
    dynaplan.register_reward("Reacher-v5", reacher)
    assert resolve_reward("Reacher-v5", "known") is reacher
    warnings: list[str] = []
    config = tiny_config(env="Reacher-v5", reward="known")
    train(config, tmp_path / "run", warn=warnings.append, **quiet())
    assert warnings == []  # the check found it equal to Reacher-v5's own reward
    dynaplan.register_reward("Reacher-v5", pendulum_reward)  # registering again replaces
    assert resolve_reward("Reacher-v5", "known") is pendulum_reward


def test_register_termination_makes_known_and_auto_use_it(registry):
    never = user_fn("never_termination")
    auto = TrainConfig(env="Reacher-v5")
    assert resolve_termination("Reacher-v5", "auto") is None and learns_termination(auto)
    dynaplan.register_termination("Reacher-v5", never)
    TrainConfig(env="Reacher-v5", model=ModelConfig(termination="known"))  # accepted now
    assert resolve_termination("Reacher-v5", "known") is never
    assert resolve_termination("Reacher-v5", "auto") is never  # planned with, not learned
    assert not learns_termination(auto)


@pytest.mark.parametrize("env_id, fn, words", [
    ("Reacher-v5", 3, "register_reward: fn must be callable"),
    (5, pendulum_reward, "register_reward: env_id must be a non-empty string"),
    ("", pendulum_reward, "register_reward: env_id must be a non-empty string"),
])
def test_register_refuses_bad_arguments(registry, env_id, fn, words):
    with pytest.raises(TypeError, match=words):
        dynaplan.register_reward(env_id, fn)


# -- the choices --------------------------------------------------------------------------

def test_termination_auto_is_the_default_and_means_known_where_there_is_one():
    assert TrainConfig().model.termination == "auto"
    assert resolve_termination("Pendulum-v1", "auto") is None  # a learned one there
    assert resolve_termination("InvertedPendulum-v5", "auto") is inverted_pendulum_termination
    for word in ("none", "learned"):  # none: never; learned: the model, not a function
        assert resolve_termination("InvertedPendulum-v5", word) is None
    function = TrainConfig(model=ModelConfig(termination=f"{FNS}:never_termination"))
    assert not learns_termination(function)


def test_functions_go_by_the_id_part_of_a_module_env(registry):
    assert resolve_reward("mypkg.envs:Pendulum-v1", "known") is pendulum_reward
    never = user_fn("never_termination")
    dynaplan.register_termination("mypkg.envs:MyEnv-v0", never)  # kept as MyEnv-v0
    for name in ("MyEnv-v0", "other.module:MyEnv-v0", "from-python:MyEnv-v0"):
        assert resolve_termination(name, "known") is never
