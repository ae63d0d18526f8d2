"""The scripts in examples/ run as a user runs them (`python examples/NAME.py --quick`,
a subprocess in a fresh folder) and print what they promise."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def example(name: str, *args: str, cwd: Path) -> str:
    """Run examples/<name>.py --quick in `cwd`; its stdout (a failure shows stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_every_example_is_tested_and_short():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == [
        "known_model_mpc", "load_and_act", "train_and_act"]
    for path in EXAMPLES.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 70, path.name


def test_known_model_mpc_brings_the_cost_down(tmp_path):
    out = example("known_model_mpc", cwd=tmp_path)
    first, last = map(float, re.search(r"cost ([\d.]+) -> ([\d.]+) in 15 steps", out).groups())
    assert last < first / 2, out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """examples/train_and_act.py --quick, run in a fresh folder: (that folder, stdout)."""
    where = tmp_path_factory.mktemp("examples")
    return where, example("train_and_act", cwd=where)


def test_train_and_act_trains_a_run_and_plays_an_episode(trained):
    where, out = trained
    assert re.search(r"^trained runs/Pendulum-v1__cem__s123__\S+: final train return -?\d",
                     out, re.M), out
    assert re.search(r"^episode return -?[\d.]+ over 20 steps$", out, re.M), out
    assert len(list((where / "runs").glob("*/summary.json"))) == 1


def test_load_and_act_loads_the_newest_run_or_the_one_named(trained):
    where, _ = trained
    out = example("load_and_act", cwd=where)
    assert re.search(r"^loaded runs/\S+: iteration 0, 40 env steps, planner cem$", out, re.M)
    assert re.search(r"^returns over 20 steps: (-?[\d.]+, ){2}-?[\d.]+$", out, re.M), out
    run_dir = next((where / "runs").iterdir())
    named = example("load_and_act", str(run_dir), cwd=where)
    assert f"loaded {run_dir}:" in named
