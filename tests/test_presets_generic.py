"""Presets for any Box environment: sized by the rules (presets.py's docstring) from the
environment's sizes and episode limit, the tuned environments unchanged, printed and
recorded by a run, listed by `dynaplan presets`."""

import json

import pytest

from dynaplan.app.cli import build_parser, main
from dynaplan.app.flags import config_from_args
from dynaplan.app.sweep_spec import expand
from dynaplan.config import config_from_values, from_dict, to_flat
from dynaplan.presets import (
    PRESETS,
    EnvShape,
    applied,
    describe_env,
    preset_settings,
    preset_values,
    sized_values,
)

# what each preset set for its four environments before it applied to any environment
# (presets.py at commit bb800ff), written out so that a change of them fails here
TODAY = {
    ("pets", "Pendulum-v1"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="cem", num_sequences=100, num_elites=10, num_iterations=3, alpha=0.1,
        # since issue 21: refit every 100 steps on 100-step training episodes
        warm_start="on", random_trajectories=1, steps_per_iteration=100, iterations=19,
        horizon=15, reward="known", epochs=40, train_episode_steps=100),
    ("icem", "Pendulum-v1"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="icem", num_sequences=100, num_elites=10, num_iterations=3,
        random_trajectories=1, steps_per_iteration=200, iterations=9, horizon=15,
        reward="known", epochs=40),
    ("mppi", "Pendulum-v1"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="mppi", num_sequences=100, num_iterations=3, random_trajectories=1,
        steps_per_iteration=200, iterations=9, horizon=15, reward="known", epochs=40),
    ("pets-paper", "Pendulum-v1"): dict(
        random_trajectories=1, steps_per_iteration=200, iterations=9, horizon=30,
        reward="known", epochs=40, planner="cem", num_sequences=500, num_elites=50,
        num_iterations=5, alpha=0.1, dynamics="ensemble", ensemble_size=5, ensemble_hidden=200,
        ensemble_layers=4, ensemble_activation="silu", ensemble_batch_size=32,
        propagation="tsinf", particles=20, warm_start="on"),
    ("pets", "InvertedPendulum-v5"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="cem", num_sequences=300, num_elites=10, num_iterations=5, alpha=0.1,
        warm_start="on", random_trajectories=5, steps_per_iteration=200, iterations=9,
        horizon=30, reward="shaped", termination="known", epochs=40, return_mean="on",
        train_episode_steps=200),
    ("icem", "InvertedPendulum-v5"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="icem", num_sequences=100, num_elites=10, num_iterations=3,
        random_trajectories=5, steps_per_iteration=200, iterations=6, horizon=30,
        reward="shaped", termination="known", epochs=40),
    ("mppi", "InvertedPendulum-v5"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="mppi", num_sequences=100, num_iterations=3, random_trajectories=5,
        steps_per_iteration=200, iterations=6, horizon=30, reward="shaped", termination="known",
        epochs=40),
    ("pets-paper", "InvertedPendulum-v5"): dict(
        random_trajectories=5, steps_per_iteration=200, iterations=6, horizon=30,
        reward="shaped", termination="known", epochs=40, planner="cem", num_sequences=500,
        num_elites=50, num_iterations=5, alpha=0.1, dynamics="ensemble", ensemble_size=5,
        ensemble_hidden=200, ensemble_layers=4, ensemble_activation="silu",
        ensemble_batch_size=32, propagation="tsinf", particles=20, warm_start="on"),
    ("pets", "MountainCarContinuous-v0"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="cem", num_sequences=100, num_elites=10, num_iterations=3, alpha=0.1,
        warm_start="on", random_trajectories=2, steps_per_iteration=999, iterations=5,
        horizon=30, reward="known", termination="known", epochs=20),
    ("icem", "MountainCarContinuous-v0"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="icem", num_sequences=100, num_elites=10, num_iterations=3,
        random_trajectories=2, steps_per_iteration=999, iterations=5, horizon=30,
        reward="known", termination="known", epochs=20),
    ("mppi", "MountainCarContinuous-v0"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=64, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="mppi", num_sequences=100, num_iterations=3, random_trajectories=2,
        steps_per_iteration=999, iterations=5, horizon=30, reward="known", termination="known",
        epochs=20),
    ("pets-paper", "MountainCarContinuous-v0"): dict(
        random_trajectories=2, steps_per_iteration=999, iterations=5, horizon=30,
        reward="known", termination="known", epochs=20, planner="cem", num_sequences=500,
        num_elites=50, num_iterations=5, alpha=0.1, dynamics="ensemble", ensemble_size=5,
        ensemble_hidden=200, ensemble_layers=4, ensemble_activation="silu",
        ensemble_batch_size=32, propagation="tsinf", particles=20, warm_start="on"),
    ("pets", "HalfCheetah-v5"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=128, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="cem", num_sequences=100, num_elites=10, num_iterations=3, alpha=0.1,
        warm_start="on", random_trajectories=1, steps_per_iteration=1000, iterations=4,
        horizon=15, reward="known", epochs=20),
    ("icem", "HalfCheetah-v5"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=128, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="icem", num_sequences=100, num_elites=10, num_iterations=3,
        random_trajectories=1, steps_per_iteration=1000, iterations=4, horizon=15,
        reward="known", epochs=20),
    ("mppi", "HalfCheetah-v5"): dict(
        dynamics="ensemble", ensemble_size=5, ensemble_hidden=128, ensemble_layers=3,
        ensemble_activation="relu", ensemble_batch_size=32, propagation="tsinf", particles=5,
        planner="mppi", num_sequences=100, num_iterations=3, random_trajectories=1,
        steps_per_iteration=1000, iterations=4, horizon=15, reward="known", epochs=20),
    ("pets-paper", "HalfCheetah-v5"): dict(
        random_trajectories=1, steps_per_iteration=1000, iterations=4, horizon=30,
        reward="known", epochs=20, ensemble_hidden=200, planner="cem", num_sequences=500,
        num_elites=50, num_iterations=5, alpha=0.1, dynamics="ensemble", ensemble_size=5,
        ensemble_layers=4, ensemble_activation="silu", ensemble_batch_size=32,
        propagation="tsinf", particles=20, warm_start="on"),
}


@pytest.mark.parametrize("key", list(TODAY), ids="-".join)
def test_the_tuned_environments_get_the_values_they_got_before(key):
    name, env = key
    assert preset_values(name, env) == TODAY[key]
    flat = to_flat(config_from_values({"preset": name, "env": env}))
    assert all(flat[k] == v for k, v in TODAY[key].items())
    assert flat["train_episode_steps"] == TODAY[key].get("train_episode_steps")


def test_hopper_is_sized_by_the_rules():
    assert describe_env("Hopper-v5") == EnvShape(11, 3, 1000)
    values = preset_values("pets", "Hopper-v5")
    assert values == {
        # the shared values of pets
        "dynamics": "ensemble", "ensemble_size": 5, "ensemble_layers": 3,
        "ensemble_activation": "relu", "ensemble_batch_size": 32, "propagation": "tsinf",
        "particles": 5, "planner": "cem", "num_sequences": 100, "num_elites": 10,
        "num_iterations": 3, "alpha": 0.1, "warm_start": "on",
        # sized: 14 inputs, 1,000-step episodes cut to 200, no known reward
        "ensemble_hidden": 64, "horizon": 15, "steps_per_iteration": 200,
        "train_episode_steps": 200, "random_trajectories": 1, "iterations": 24,
        "epochs": 20, "reward": "learned"}
    assert "termination" not in values  # none until `auto` exists
    sources = {k: s.source for k, s in preset_settings("pets", "Hopper-v5").items()}
    assert sources["ensemble_hidden"] == sources["reward"] == "sized"
    assert sources["planner"] == "shared"
    config = config_from_values({"preset": "pets", "env": "Hopper-v5"})
    assert (config.model.reward, config.train_episode_steps, config.iterations) == (
        "learned", 200, 24)


def test_short_episodes_take_more_random_episodes_and_keep_their_limit():
    values = preset_values("icem", "Reacher-v5")  # 10 + 2 inputs, 50-step episodes
    assert (values["random_trajectories"], values["iterations"]) == (4, 24)
    assert values["ensemble_hidden"] == 64 and values["planner"] == "icem"
    assert "train_episode_steps" not in values


@pytest.mark.parametrize("shape, hidden, cut, random, iterations", [
    (EnvShape(13, 3, 1000), 64, 200, 1, 24),   # 16 inputs: still narrow
    (EnvShape(14, 3, 1000), 128, 200, 1, 24),  # 17 inputs: wide
    (EnvShape(105, 8, 1000), 128, 200, 1, 24),  # Ant-v5's sizes: capped at 128
    (EnvShape(4, 1, None), 64, 200, 1, 24),    # no episode limit: cut to 200 steps
    (EnvShape(4, 1, 200), 64, None, 1, 24),
    (EnvShape(4, 1, 30), 64, None, 7, 24),     # 7 x 30 random steps, then 24 x 200
    (EnvShape(4, 1, 120), 64, None, 2, 24),
])
def test_the_rules_scale_with_the_sizes_and_the_episode_limit(shape, hidden, cut, random,
                                                              iterations):
    values = {k: v for k, (v, _) in sized_values(shape, known_reward=False).items()}
    assert values["ensemble_hidden"] == hidden
    assert values.get("train_episode_steps") == cut
    assert values["random_trajectories"] == random
    assert values["iterations"] == iterations
    episode = min(shape.max_episode_steps or 200, 200)
    # random data and planned iterations add up to about 5,000 steps
    assert 5000 <= random * episode + iterations * values["steps_per_iteration"] < 5200
    assert values["reward"] == "learned"
    assert sized_values(shape, known_reward=True)["reward"][0] == "known"


def test_pets_paper_keeps_its_published_values_for_any_env():
    for env in ("Hopper-v5", "Reacher-v5"):
        v = preset_values("pets-paper", env)
        assert (v["num_sequences"], v["num_elites"], v["num_iterations"], v["horizon"]) == (
            500, 50, 5, 30)
        assert (v["ensemble_hidden"], v["ensemble_layers"], v["ensemble_activation"],
                v["particles"]) == (200, 4, "silu", 20)
        assert v["reward"] == "learned" and v["steps_per_iteration"] == 200


def test_flags_and_config_keys_win_over_a_sized_value():
    c = config_from_values({"preset": "mppi", "env": "Hopper-v5", "horizon": 7,
                            "train-episode-steps": 500})
    assert (c.planner.name, c.planner.horizon, c.train_episode_steps) == ("mppi", 7, 500)
    record = applied("mppi", "Hopper-v5", to_flat(c))
    assert record["overridden"] == {"horizon": {"preset": 15, "run": 7},
                                    "train_episode_steps": {"preset": 200, "run": 500}}
    assert "horizon" not in record["values"] and record["values"]["planner"] == "mppi"
    assert record["sized_for"] == {"obs_dim": 11, "action_dim": 3, "max_episode_steps": 1000}


def test_a_sweep_and_a_config_file_take_a_preset_for_any_env(tmp_path):
    trials = expand({"env": "Reacher-v5", "preset": ["pets", "mppi"], "seed": 0})
    assert [t.name for t in trials] == ["Reacher-v5__pets__s0", "Reacher-v5__mppi__s0"]
    assert all(t.config.model.reward == "learned" and t.config.random_trajectories == 4
               for t in trials)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preset: icem\nenv: Reacher-v5\nhorizon: 4\n")
    args = build_parser().parse_args(["train", "--config", str(cfg), "--epochs", "3"])
    c = config_from_args(args)
    assert (c.preset, c.planner.name, c.model.reward) == ("icem", "icem", "learned")
    assert (c.planner.horizon, c.model.epochs, c.random_trajectories) == (4, 3, 4)


def test_presets_lists_the_shared_values_and_the_rules(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert f"\n{name}: " in f"\n{out}"
    assert "ensemble_hidden      64 when O + A <= 16, else 128" in out
    assert "tuned values (in place of the rules): Pendulum-v1, InvertedPendulum-v5" in out


def test_presets_for_an_env_shows_the_exact_values_and_their_sources(capsys):
    assert main(["presets", "--env", "Hopper-v5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Hopper-v5: observation 11, action 3, episode limit 1000 steps;")
    tables: dict[str, dict[str, str]] = {}
    for line in out.splitlines()[1:]:
        if line.endswith(":") and not line.startswith(" "):
            table = tables.setdefault(line[:-1], {})
        elif line.startswith("  "):
            key, value, source = line.split(maxsplit=2)
            table[key] = value
            if key == "reward":
                assert source == "sized: no known reward"
    assert list(tables) == list(PRESETS)
    for name in PRESETS:
        assert tables[name] == {k: str(v) for k, v in preset_values(name, "Hopper-v5").items()}
    assert main(["presets", "--env", "Pendulum-v1", "--preset", "pets"]) == 0
    out = capsys.readouterr().out
    assert "tuned values" in out and "\npets:\n" in out and "icem" not in out
    assert [ln.split() for ln in out.splitlines() if ln.startswith("  iterations")] == [
        ["iterations", "19", "tuned"]]


def test_a_bad_env_id_is_refused_in_one_line(capsys):
    assert main(["presets", "--env", "Hoper-v5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown environment id 'Hoper-v5'" in err[0]
    assert "did you mean Hopper-v5" in err[0]


def test_a_run_with_a_preset_on_an_unlisted_env_prints_and_records_it(tmp_path, capsys):
    out = tmp_path / "run"
    small = ["--iterations", "1", "--steps-per-iteration", "5", "--random-trajectories", "1",
             "--train-episode-steps", "10", "--horizon", "3", "--num-sequences", "8",
             "--num-elites", "2", "--num-iterations", "2", "--epochs", "1",
             "--ensemble-hidden", "8", "--ensemble-layers", "1", "--batch-size", "64",
             "--video-every", "0", "--device", "cpu"]
    assert main(["train", "--preset", "pets", "--env", "InvertedDoublePendulum-v5", *small,
                 "--out", str(out)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("preset pets for InvertedDoublePendulum-v5: dynamics ensemble, ")
    assert "reward learned" in first and "epochs" not in first.split(";")[0]
    assert "; yours instead: " in first and "horizon 3 (preset 15)" in first
    record = json.loads((out / "preset.json").read_text())
    assert record["preset"] == "pets" and record["env"] == "InvertedDoublePendulum-v5"
    assert record["values"]["reward"] == "learned" and record["sources"]["reward"] == "sized"
    assert record["values"]["particles"] == 5 and record["sources"]["particles"] == "shared"
    assert record["overridden"]["train_episode_steps"] == {"preset": 200, "run": 10}
    assert record["sized_for"] == {"obs_dim": 9, "action_dim": 1, "max_episode_steps": 1000}
    saved = to_flat(from_dict(json.loads((out / "config.json").read_text())))
    assert saved["preset"] == "pets" and saved["reward"] == "learned"
    assert saved["horizon"] == 3 and saved["particles"] == 5


def test_a_run_without_a_preset_writes_no_preset_file(tmp_path):
    from conftest import TINY

    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert not (out / "preset.json").exists()
