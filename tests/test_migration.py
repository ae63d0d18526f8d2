"""Run folders written before the configuration was nested (format 1: a flat config.json
and flat configs in the checkpoints) still load, resume and evaluate. The fixtures were
written by dynaplan at 9e3ba36, the last flat-config commit (one torch thread):

    data/run_v1_pets.tar.gz   dynaplan train --preset pets --iterations 2
        --random-trajectories 1 --steps-per-iteration 1 --horizon 3 --num-sequences 8
        --cem-iterations 2 --num-elites 2 --epochs 2 --batch-size 64 --video-every 0
        --device cpu --ensemble-hidden 8 --ensemble-layers 1 --keep-checkpoints 1
    data/config_v1_seed.json  the config.json of the same flags without the preset and
        the ensemble options (the seed's MLPs)
"""

import json
import math
import tarfile
from pathlib import Path

import pytest
from objectives import kernel_runs_here
from test_cli import main_config, read_rows

from dynaplan.app.cli import main
from dynaplan.config import from_dict, to_dict, to_flat
from dynaplan.diagnostics import COLUMNS as DIAGNOSTICS
from dynaplan.runs import load_run_config

DATA = Path(__file__).parent / "data"
FLAGS = ["--iterations", "2", "--random-trajectories", "1", "--steps-per-iteration", "1",
         "--horizon", "3", "--num-sequences", "8", "--cem-iterations", "2", "--num-elites", "2",
         "--epochs", "2", "--batch-size", "64", "--video-every", "0", "--device", "cpu"]
PETS = ["--preset", "pets", "--ensemble-hidden", "8", "--ensemble-layers", "1"]
# the default before `auto` existed, and the pets preset's training episodes before issue 21
OLD_DEFAULTS = ["--termination", "none", "--config", str(DATA / "pets_before_issue21.yaml")]


@pytest.fixture
def old_run(tmp_path):
    with tarfile.open(DATA / "run_v1_pets.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "oldens"


def test_a_flat_config_reads_as_the_config_its_flags_give(old_run):
    assert load_run_config(old_run) == main_config(FLAGS + PETS + OLD_DEFAULTS)
    seed = json.loads((DATA / "config_v1_seed.json").read_text())
    assert from_dict(seed) == main_config(FLAGS + OLD_DEFAULTS)
    # its options, written flat, are the flat file's wherever that set one
    flat = to_flat(from_dict(seed))
    for key, value in seed.items():
        key = "num_iterations" if key == "cem_iterations" else key
        if value is not None and key in flat:
            assert flat[key] == value, key


def test_the_stored_form_round_trips():
    for config in (main_config(FLAGS), main_config(FLAGS + PETS)):
        stored = json.loads(json.dumps(to_dict(config)))
        assert stored["format"] == 2 and from_dict(stored) == config


def test_an_old_run_evaluates(old_run, capsys):
    assert main(["eval", str(old_run), "--episodes", "1", "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["checkpoint_iteration"] == 1 and len(result["returns"]) == 1


def test_an_old_run_resumes_as_a_run_of_this_version_would(old_run, tmp_path, capsys):
    assert main(["train", "--resume", str(old_run), "--iterations", "3", "--quiet"]) == 0
    assert json.loads((old_run / "config.json").read_text())["format"] == 2
    resumed = read_rows(old_run / "metrics.csv")
    assert [int(r["iteration"]) for r in resumed] == [0, 1, 2]
    if not kernel_runs_here("native"):
        pytest.skip("the old run planned on the native kernel, which does not build here")
    fresh = tmp_path / "fresh"
    assert main(["train", *FLAGS, *PETS, *OLD_DEFAULTS, "--iterations", "3", "--quiet",
                 "--out", str(fresh)]) == 0
    # the old run's iterations have no diagnostics (they came later), and fitted the reward
    # model the known reward made unused (its losses and its view of the return): compare
    # the rest, which the unfitted reward model's draws keep the same
    unused = {"model/reward_train_loss", "model/reward_valid_loss", "train/predicted_return"}

    def measured(rows):
        return [{k: v for k, v in r.items() if k not in DIAGNOSTICS and k not in unused}
                for r in rows]
    # to float32 rounding: a host whose torch takes other SIMD kernels (AVX-512 here, AVX2
    # where the fixture was written) sums the losses in another order
    assert_close_rows(measured(read_rows(fresh / "metrics.csv")), measured(resumed))


def assert_close_rows(got, want):
    assert [list(r) for r in got] == [list(r) for r in want]
    for g, w in zip(got, want):
        for key in g:
            a, b = float(g[key]), float(w[key])
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6), \
                (key, g[key], w[key])
