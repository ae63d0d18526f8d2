"""`--preset`: fills options per environment, never overrides what the user gave."""

import json

import pytest
import torch
from conftest import TINY

from dynaplan.app.cli import main
from dynaplan.config import TrainConfig, config_from_values, from_dict, to_flat
from dynaplan.config.flat import ALIASES
from dynaplan.errors import ConfigError
from dynaplan.presets import PRESETS, preset_values


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("env", ["Pendulum-v1", "InvertedPendulum-v5",
                                 "MountainCarContinuous-v0", "HalfCheetah-v5"])
def test_every_preset_is_a_valid_config_for_every_env(name, env):
    config = config_from_values({"preset": name, "env": env})
    assert config.preset == name and config.env == env
    assert config.model.dynamics == "ensemble"
    # the preset's values, not the seed exercise's defaults
    flat = to_flat(config)
    for key, value in preset_values(name, env).items():
        assert flat[ALIASES.get(key, key)] == value


def test_pets_paper_is_the_published_setting():
    c = to_flat(config_from_values({"preset": "pets-paper"}))
    assert (c["planner"], c["num_sequences"], c["num_elites"], c["horizon"]) == (
        "cem", 500, 50, 30)
    assert (c["ensemble_size"], c["ensemble_layers"], c["ensemble_hidden"]) == (5, 4, 200)
    assert (c["particles"], c["propagation"]) == (20, "tsinf")


def test_given_values_win_over_the_preset():
    c = config_from_values({"preset": "icem", "num-sequences": 64, "horizon": 7})
    assert (c.planner.name, c.planner.options.num_sequences, c.planner.horizon) == (
        "icem", 64, 7)
    assert c.model.dynamics == "ensemble"


def test_no_preset_keeps_the_seed_defaults():
    assert config_from_values({}) == TrainConfig()


def test_unsupported_env_and_unknown_preset_are_refused():
    with pytest.raises(ConfigError, match="'Acrobot-v1' has a Discrete action space"):
        config_from_values({"preset": "pets", "env": "Acrobot-v1"})
    with pytest.raises(ConfigError, match="unknown preset 'pest'"):
        config_from_values({"preset": "pest"})


def test_cli_preset_then_config_file_then_flags(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preset: mppi\nparticles: 5\nensemble-hidden: 16\nensemble-layers: 1\n")
    out = tmp_path / "run"
    assert main(["train", *TINY, "--config", str(cfg), "--num-sequences", "12",
                 "--out", str(out)]) == 0
    saved = to_flat(from_dict(json.loads((out / "config.json").read_text())))
    assert saved["preset"] == "mppi" and saved["planner"] == "mppi"
    assert saved["reward"] == "known"  # from the preset
    assert saved["particles"] == 5  # the file over the preset
    assert saved["num_sequences"] == 12 and saved["horizon"] == 3  # flags over both


def test_cli_refuses_a_preset_for_an_env_it_cannot_plan_in_one_line(capsys):
    assert main(["train", "--preset", "pets", "--env", "CartPole-v1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'CartPole-v1' has a Discrete action space" in err[0]


def test_return_mean_switch_reaches_cem_and_is_refused_by_mppi():
    from dynaplan.build import build_planner
    from dynaplan.envs import make_env

    spec = make_env("Pendulum-v1")[1]
    gen = torch.Generator()
    for value, expected in (("on", True), ("off", False), (None, False)):
        config = config_from_values({"planner": "cem", "return-mean": value, "device": "cpu"})
        assert build_planner(config, None, spec, gen).options.return_mean is expected
    with pytest.raises(ConfigError, match="has no option"):
        config_from_values({"planner": "mppi", "return-mean": "on", "device": "cpu"})
    with pytest.raises(ConfigError, match="return_mean must be one of off, on"):
        config_from_values({"return-mean": "yes"})
