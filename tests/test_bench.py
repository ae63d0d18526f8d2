"""`dynaplan bench` reports every figure, and its FLOP count matches the layer shapes."""

import json
from pathlib import Path

import pytest
import torch

from dynaplan.cli import main
from dynaplan.models import DynamicsModel, RewardModel
from dynaplan.models.fused import FusedMLPs

SEED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "seed_reference.py"


def test_flops_per_row_counts_every_layer():
    dyn, rew = DynamicsModel(3, 1), RewardModel(3, 1)
    # 4 -> 512 -> 256 -> 3 for both networks (reward's 1 output padded to 3)
    per_net = 2 * (4 * 512 + 512 * 256 + 256 * 3)
    assert FusedMLPs([dyn, rew]).flops_per_row() == 2 * per_net
    pets = DynamicsModel(3, 1, hidden=(200, 200, 200, 200), batch_norm=False, activation="silu")
    assert FusedMLPs([pets]).flops_per_row() == 2 * (4 * 200 + 3 * 200 * 200 + 200 * 3)


def test_fused_silu_network_without_batchnorm_equals_the_module():
    torch.manual_seed(0)
    pets = DynamicsModel(3, 1, hidden=(200, 200, 200, 200), batch_norm=False, activation="silu")
    pets.eval()
    s, a = torch.randn(32, 3), torch.randn(32, 1)
    with torch.no_grad():
        assert torch.allclose(s + FusedMLPs([pets])(torch.cat([s, a], 1))[0], pets(s, a),
                              atol=1e-5)


def test_bench_command_reports_all_figures(tmp_path, capsys):
    out = tmp_path / "bench.json"
    ref = str(SEED_REFERENCE) if SEED_REFERENCE.is_file() else ""
    code = main(["bench", "--calls", "2", "--warmup", "0", "--fit-epochs", "1",
                 "--loop-steps", "2", "--device", "cpu", "--seed-reference", ref,
                 "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert [s["setting"] for s in report["settings"]] == [
        "a_seed_cem", "b_seed_random", "c_pets_sized"]
    for s in report["settings"]:
        for key in ("ms_p50", "ms_p99", "gflop_per_call", "floor_ms", "ratio_to_floor",
                    "layer_gflops"):
            assert s[key] > 0, key
    # CEM over 100 x 15 x 5 rows of two 4-512-256-3 networks
    assert report["settings"][0]["gflop_per_call"] == pytest.approx(
        100 * 15 * 5 * 4 * (4 * 512 + 512 * 256 + 256 * 3) / 1e9)
    if ref:
        assert report["settings"][0]["speedup_vs_seed"] > 0
    assert report["mpc_steps_per_s"] > 0 and report["fit"]["ratio_to_floor"] > 0
    assert "ratio to floor" in capsys.readouterr().out


def test_bench_refuses_bad_counts(capsys):
    assert main(["bench", "--calls", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err
