"""The public Python API (src/dynaplan/api.py, known_model.py, __init__.py): train a run
from keyword options, load it as an agent that acts inside the bounds, resume it, bad
options refused in one line, known-model MPC that finds a known optimum, and an
`import dynaplan` that stays light."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import toy_envs

import dynaplan
from dynaplan.api import make_config
from dynaplan.config import TrainConfig, config_from_values

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = dict(iterations=1, random_trajectories=1, steps_per_iteration=10, train_episode_steps=10,
            horizon=3, num_sequences=8, num_iterations=2, num_elites=2, epochs=1,
            batch_size=64, video_every=0, device="cpu")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny Pendulum-v1 run trained through dynaplan.train (20 env steps)."""
    out = tmp_path_factory.mktemp("api") / "run"
    result = dynaplan.train(env="Pendulum-v1", out=out, progress=False, **TINY)
    assert result.run_dir == out and (out / "summary.json").is_file()
    return result


def test_a_run_trained_from_options_acts_inside_the_bounds(run):
    assert run.summary["iterations"] == 1 and run.summary["env_steps"] == 20
    assert run.config.planner.options.num_sequences == 8
    agent = dynaplan.load(run.run_dir)
    assert isinstance(agent, dynaplan.Agent)
    assert agent.iteration == 0 and agent.env_steps == 20 and agent.config.iterations == 1
    assert isinstance(agent.planner, dynaplan.CEMPlanner)
    env = agent.make_env()
    obs, _ = env.reset(seed=0)
    env.close()
    action = agent.act(obs)
    assert action.shape == (1,) and action.dtype == np.float32
    assert -2.0 <= action[0] <= 2.0
    batch = agent.act(np.stack([obs, -obs, obs]))
    assert batch.shape == (3, 1) and (np.abs(batch) <= 2.0).all()
    agent.reset()
    assert len(agent.evaluate(2)) == 2


def test_the_run_object_loads_itself_with_planner_options(run):
    agent = run.load(num_sequences=16, seed=3)
    assert agent.config.planner.options.num_sequences == 16
    assert agent.act([1.0, 0.0, 0.0]).shape == (1,)  # a list is an observation too


def test_a_wrong_observation_shape_is_refused(run):
    agent = dynaplan.load(run.run_dir)
    with pytest.raises(ValueError, match=r"obs must have shape \[3\] or \[B, 3\], got \[2\]"):
        agent.act(np.zeros(2))


def test_resume_extends_the_run(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run.run_dir, copy)
    extended = dynaplan.resume(copy, iterations=2, progress=False)
    assert extended.summary["iterations"] == 2 and not extended.already_complete
    assert json.loads((copy / "config.json").read_text())["iterations"] == 2
    assert dynaplan.load(copy).iteration == 1
    again = dynaplan.resume(copy, progress=False)
    assert again.already_complete and again.summary["iterations"] == 2


@pytest.mark.parametrize("options, named", [
    (dict(horizn=3), r"unknown option 'horizn' \(did you mean horizon\?\)"),
    (dict(horizon=0), "horizon must be positive, got 0"),
    (dict(planner="cme"), "planner must be one of"),
    (dict(preset="fast"), "fast"),
    (dict(num_sequences="many"), "num_sequences must be an integer, got 'many'"),
])
def test_a_bad_option_is_one_line_naming_it_and_writes_nothing(options, named, tmp_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(dynaplan.ConfigError, match=named) as caught:
        dynaplan.train(**options)
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_a_bad_load_option_is_refused(run):
    with pytest.raises(dynaplan.ConfigError, match="unknown option 'num_sequencs'"):
        dynaplan.load(run.run_dir, num_sequencs=4)


def test_options_go_over_a_config_and_presets_apply_to_options_only():
    assert make_config() == TrainConfig()  # dynaplan.train() is `dynaplan train`: the seed's
    assert make_config(TrainConfig(), horizon=7).planner.horizon == 7
    assert make_config(preset="pets", env="Pendulum-v1", iterations=3) == config_from_values(
        {"preset": "pets", "env": "Pendulum-v1", "iterations": 3})
    with pytest.raises(dynaplan.ConfigError, match="a preset fills in options"):
        make_config(TrainConfig(), preset="pets")
    with pytest.raises(dynaplan.ConfigError, match=r"no name makes from-python:\S*<lambda> again"):
        make_config(env=lambda: toy_envs.make_toy(), preset="pets")  # a preset sizes by name
    assert make_config(env=toy_envs.make_toy, preset="pets").env == "toy_envs:make_toy"
    with pytest.raises(dynaplan.ConfigError, match="config must be a TrainConfig"):
        make_config({"horizon": 3})  # type: ignore[arg-type]


def test_a_run_on_an_env_factory_loads_in_it_again(tmp_path):
    def factory():
        return toy_envs.make_toy(goal=0.5)

    result = dynaplan.train(env=factory, out=tmp_path / "run", progress=False,
                            **{**TINY, "train_episode_steps": None})
    assert result.config.env.startswith("from-python:") and result.config.env.endswith("factory")
    agent = result.load()  # the run remembers the factory it was given
    assert agent.act(agent.make_env().reset(seed=0)[0]).shape == (1,)
    with pytest.raises(dynaplan.ConfigError, match="from-python"):
        dynaplan.load(result.run_dir)  # another process would have to pass it again
    assert dynaplan.load(result.run_dir, env=factory).iteration == 0


# -- known-model MPC ----------------------------------------------------------------------

GOAL = 3.0


def point(state, action):
    """A point on a line moved by the action: x' = x + a, a in [-1, 1]."""
    return state + action


def to_goal(obs, action, next_obs):
    return -(next_obs[..., 0] - GOAL) ** 2


PRECISION = {"cem": 0.05, "icem": 0.05, "mppi": 0.15, "random": 0.5}
"""How close each planner holds the point to the goal (random shooting: 200 samples of 5
steps, no refinement)."""


@pytest.mark.parametrize("planner", sorted(dynaplan.PLANNERS))
def test_known_model_mpc_reaches_the_optimum(planner):
    # the optimum: full speed for three steps, then stay at the goal (reward -(x - 3)^2)
    controller = dynaplan.mpc(point, to_goal, -1.0, 1.0, planner=planner, horizon=5,
                              num_sequences=200)
    x, path = np.zeros(1, np.float32), []
    for _ in range(8):
        x = x + controller.act(x)
        path.append(float(x[0]))
    assert path[2] > 2.3, path  # close to full speed
    assert max(abs(p - GOAL) for p in path[4:]) < PRECISION[planner], path
    batch = controller.act(np.zeros((4, 1), np.float32))  # [B, O] -> [B, A]
    assert batch.shape == (4, 1) and (np.abs(batch) <= 1.0).all()


def test_the_same_seed_gives_the_same_actions():
    first, second = (dynaplan.mpc(point, to_goal, -1.0, 1.0, seed=5).act(np.zeros(1))
                     for _ in range(2))
    assert first == second


def test_a_plain_function_runs_through_the_reference_rollout():
    objective = dynaplan.objective_from_functions(point, to_goal)
    assert objective.kernel == "reference"
    actions = torch.tensor([[[[1.0], [1.0]], [[0.5], [-1.0]]]])  # [B=1, N=2, H=2, A=1]
    returns = objective(torch.zeros(1, 1), actions)  # x: 1, 2 and 0.5, -0.5
    expected = torch.tensor([[-(4.0 + 1.0), -(2.5**2 + 3.5**2)]])
    torch.testing.assert_close(returns, expected)
    # what a run's default rollout_kernel chooses for a plain function: the reference
    from dynaplan import accel
    from dynaplan.config import SpeedConfig

    for kernel in (SpeedConfig().rollout_kernel, "auto", "torch", "reference"):
        rollout = accel.select_rollout(kernel, point, to_goal, None)
        assert rollout.name == "reference", kernel
        torch.testing.assert_close(dynaplan.ModelObjective(point, to_goal, rollout=rollout)(
            torch.zeros(1, 1), actions), expected)
    with pytest.raises(ValueError, match="does not run a function"):  # not AttributeError
        accel.select_rollout("native", point, to_goal, None)


def test_termination_stops_the_known_return():
    def past_one(obs, action, next_obs):
        return next_obs[..., 0] >= 1.0

    objective = dynaplan.objective_from_functions(point, lambda o, a, n: n[..., 0] * 0 + 1,
                                                  past_one)
    actions = torch.ones(1, 1, 4, 1)  # x: 1, 2, 3, 4: ends after the first step
    assert objective(torch.zeros(1, 1), actions).item() == 1.0


@pytest.mark.parametrize("call, named", [
    (lambda: dynaplan.mpc(point, to_goal, -1.0, 1.0, num_sequencs=9), "num_sequencs"),
    (lambda: dynaplan.mpc(point, to_goal, -1.0, 1.0, planner="cme"), "unknown planner 'cme'"),
    (lambda: dynaplan.mpc(point, to_goal, 1.0, -1.0), "action_low must be below"),
    (lambda: dynaplan.mpc(point, to_goal, [-1.0, -1.0], [1.0, 1.0, 1.0]), "same shape"),
    (lambda: dynaplan.mpc(point, to_goal, -1.0, 1.0, horizon=0),
     "horizon must be a positive integer, got 0"),
    (lambda: dynaplan.mpc(point, 3.0, -1.0, 1.0), "reward must be a function"),
])
def test_bad_known_model_arguments_are_one_line(call, named):
    with pytest.raises(dynaplan.ConfigError, match=named):
        call()


# -- the exported surface -----------------------------------------------------------------

def test_every_exported_name_exists():
    for name in dynaplan.__all__:
        assert getattr(dynaplan, name) is not None, name
    assert set(dynaplan.__all__) <= set(dir(dynaplan))
    assert dynaplan.PLANNERS["cem"] is dynaplan.CEMPlanner
    with pytest.raises(AttributeError):
        dynaplan.no_such_name  # noqa: B018


def test_import_dynaplan_is_light_and_known_model_mpc_needs_no_accelerator():
    script = (
        "import sys; import dynaplan\n"
        "heavy = ('torch', 'gymnasium', 'matplotlib', 'dynaplan.accel')\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in "
        "sys.modules]\n"
        "c = dynaplan.mpc(lambda s, a: s + a, lambda o, a, n: -n[..., 0] ** 2, -1.0, 1.0)\n"
        "c.act([2.0])\n"
        "assert 'dynaplan.accel' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_package_ships_its_type_information():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["dynaplan"]
    assert (SRC / "dynaplan" / "py.typed").is_file()
