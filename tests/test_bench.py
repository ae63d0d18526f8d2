"""`dynaplan bench` reports every figure, and its FLOP count matches the layer shapes."""

import json
import math
from pathlib import Path

import pytest
import torch

from dynaplan.accel.fused import FusedMLPs
from dynaplan.accel.native_rollout import unavailable as native_unavailable
from dynaplan.app.cli import main
from dynaplan.app.matmul_floor import MIN_PROBE_GFLOP, MatmulProbe, square_probe, time_interleaved
from dynaplan.models import DynamicsModel, RewardModel

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
    assert report["tf32"] is False and report["cuda_graph"] is False
    assert report["rollout_kernel"] == "auto"
    # the presets' plan calls (g, on InvertedPendulum-v5, needs MuJoCo: the test extra has it)
    assert [s["setting"] for s in report["settings"]] == [
        "a_seed_cem", "b_seed_random", "c_pets_sized", "e_pets_pendulum",
        "f_pets_pendulum_eval10", "g_pets_inverted_pendulum"]
    # auto: the native kernel where it runs, timed beside the torch path
    kernel = "torch" if native_unavailable() else "native"
    for s in report["settings"]:
        assert s["rollout_kernel"] == kernel
        assert (s.get("speedup_vs_torch", 0) > 0) == (kernel == "native")
    for s in report["settings"]:
        for key in ("ms_p50", "ms_p99", "gflop_per_call", "floor_ms", "ratio_to_floor",
                    "layer_gflops", "square_gflops"):
            assert s[key] > 0, key
        best = max(s["layer_gflops"], s["square_gflops"])
        assert s["floor_ms"] == pytest.approx(1e3 * s["gflop_per_call"] / best)
    # CEM over 100 x 15 x 5 rows of a 4-512-256-3 dynamics and a 4-512-256-1 reward network
    dyn_row, rew_row = (2 * (4 * 512 + 512 * 256 + 256 * out) for out in (3, 1))
    assert report["settings"][0]["gflop_per_call"] == pytest.approx(
        100 * 15 * 5 * (dyn_row + rew_row) / 1e9)
    # the pets preset: 5 members of 4-64-64-64-6 (mean and log-variance), CEM 100 x 3 x 15
    # steps, 5 particles a sequence; its evaluation call plans 10 start states at once;
    # InvertedPendulum-v5's: 5-64-64-64-8, CEM 300 x 5 x 30
    member_row = 2 * (4 * 64 + 2 * 64 * 64 + 64 * 6)
    e, f, g = report["settings"][3:]
    assert e["gflop_per_call"] == pytest.approx(100 * 5 * 3 * 15 * member_row / 1e9)
    assert f["gflop_per_call"] == pytest.approx(10 * e["gflop_per_call"])
    assert g["gflop_per_call"] == pytest.approx(
        300 * 5 * 5 * 30 * 2 * (5 * 64 + 2 * 64 * 64 + 64 * 8) / 1e9)
    assert (f["batch"], g["env"]) == (10, "InvertedPendulum-v5")
    # the layer probes: the 512 x 256 layer of both networks, the 200 x 200 layer of one,
    # the members' 64 x 64 layers over the rows each member steps
    assert [s["layer_shape"] for s in report["settings"]] == [
        [2, 100, 512, 256], [2, 100, 512, 256], [1, 500, 200, 200], [5, 100, 64, 64],
        [5, 1000, 64, 64], [5, 300, 64, 64]]
    if ref:
        assert report["settings"][0]["speedup_vs_seed"] > 0
    assert report["mpc_steps_per_s"] > 0 and report["fit"]["ratio_to_floor"] > 0
    # fitting the same two networks: 3x the forward FLOPs per training row, plus one
    # forward pass over the validation rows per fit (here of 1 epoch)
    fit, per_row = report["fit"], (dyn_row + rew_row) / 1e9
    assert (fit["train_rows"], fit["valid_rows"], fit["epochs_per_fit"]) == (16000, 4000, 1)
    assert fit["gflop_per_epoch"] == pytest.approx((3 * 16000 + 4000) * per_row)
    assert fit["floor_s"] == pytest.approx(
        fit["gflop_per_epoch"] / max(fit["square_gflops"], fit["layer_gflops"]))
    assert "ratio to floor" in capsys.readouterr().out


def test_bench_refuses_bad_counts(capsys):
    assert main(["bench", "--calls", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err


def test_bench_refuses_gpu_flags_off_a_gpu_and_unknown_settings(capsys):
    assert main(["bench", "--device", "cpu", "--cuda-graph"]) == 2
    assert "--cuda-graph needs a CUDA device" in capsys.readouterr().err
    assert main(["bench", "--device", "cpu", "--tf32"]) == 2
    assert "--tf32 needs a CUDA device" in capsys.readouterr().err
    assert main(["bench", "--device", "cpu", "--settings", "z_nothing"]) == 2
    assert "unknown bench setting 'z_nothing'" in capsys.readouterr().err


def test_ensemble_setting_counts_one_member_per_row():
    from dynaplan.app.bench_setup import SETTINGS, ensemble_dynamics, ensemble_gflop, random_data

    d = SETTINGS[3]
    dyn = ensemble_dynamics(d, random_data(400), torch.device("cpu"))
    gflop, shape = ensemble_gflop(d, dyn)
    per_row = 2 * (4 * 200 + 3 * 200 * 200 + 200 * 6)  # mean and log-variance heads: 2 x 3
    assert gflop == pytest.approx(500 * 20 * 30 * 5 * per_row / 1e9)
    assert shape == [5, 500 * 20 // 5, 200, 200]


def test_matmul_probe_runs_enough_products_and_rates_by_the_median():
    probe = MatmulProbe(100, 512, 256, batch=2)
    one = 2 * 2 * 100 * 512 * 256 / 1e9
    assert probe.inner == math.ceil(MIN_PROBE_GFLOP / one) and probe.gflop == pytest.approx(
        probe.inner * one)
    probe()
    assert torch.equal(probe.out, torch.bmm(probe.a, probe.b))
    # the median of the call times, so one slow call (a busy host) does not move it
    assert probe.rate([0.001, 0.002, 5.0]) == pytest.approx(probe.gflop / 0.002)
    assert square_probe("cpu").inner == 1


def test_time_interleaved_takes_turns_and_appends():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    times = time_interleaved(fns, 3)
    assert order == ["a", "b"] * 3 and [len(times[k]) for k in fns] == [3, 3]
    time_interleaved(fns, 2, into=times)
    assert [len(times[k]) for k in fns] == [5, 5] and all(t >= 0 for t in times["a"])


# -- the seed's code: found, given, or skipped with one line --------------------------


def tiny_bench(monkeypatch, capsys, *flags):
    """`dynaplan bench` on the smallest budget (one setting that has a seed comparison,
    one fit on 400 transitions): exit status, stderr, the JSON report."""
    from dynaplan.app import bench

    real_fit = bench.bench_fit
    monkeypatch.setattr(bench, "bench_fit", lambda device, epochs: real_fit(
        device, epochs, n=400, fits=1, probes_per_fit=1))
    out = Path("bench.json").resolve()
    code = main(["bench", "--settings", "b_seed_random", "--calls", "1", "--warmup", "0",
                 "--fit-epochs", "1", "--loop-steps", "1", "--device", "cpu",
                 "--json", str(out), *flags])
    err = capsys.readouterr().err
    return code, err, json.loads(out.read_text()) if out.is_file() else None


def warnings_in(err):
    return [ln for ln in err.splitlines() if ln.startswith("dynaplan: warning:")]


def test_bench_without_a_seed_reference_says_so_once_and_times_the_rest(tmp_path, monkeypatch,
                                                                        capsys):
    monkeypatch.chdir(tmp_path)  # outside a checkout: no ../shared/anchors
    monkeypatch.delenv("DYNAPLAN_SEED_REFERENCE", raising=False)
    code, err, report = tiny_bench(monkeypatch, capsys)
    assert code == 0 and "Traceback" not in err
    [note] = warnings_in(err)
    assert "no seed reference found" in note and "--seed-reference FILE" in note
    assert report["seed_reference"] is None and "seed_ms_p50" not in report["settings"][0]
    assert report["settings"][0]["ms_p50"] > 0 and report["fit"]["s_per_epoch"] > 0


def test_bench_without_scikit_learn_skips_the_seed_comparison_in_one_line(tmp_path,
                                                                           monkeypatch, capsys):
    import sys

    for name in ("sklearn", "sklearn.preprocessing"):  # `import sklearn` now fails
        monkeypatch.setitem(sys.modules, name, None)
    seed = tmp_path / "seed_reference.py"
    seed.write_text("raise AssertionError('loaded although scikit-learn is missing')\n")
    monkeypatch.chdir(tmp_path)
    code, err, report = tiny_bench(monkeypatch, capsys, "--seed-reference", str(seed))
    assert code == 0 and "Traceback" not in err
    [note] = warnings_in(err)
    assert "pip install scikit-learn" in note
    assert report["seed_reference"] is None and "seed_ms_p50" not in report["settings"][0]


def test_a_seed_reference_is_found_through_the_variable_and_a_missing_one_is_refused(
        tmp_path, monkeypatch, capsys):
    from dynaplan.app.bench_setup import seed_reference_path

    monkeypatch.chdir(tmp_path)
    seed = tmp_path / "mine.py"
    seed.write_text("VALUE = 3\n")
    monkeypatch.setenv("DYNAPLAN_SEED_REFERENCE", str(seed))
    assert seed_reference_path(None) == (seed, None)
    assert seed_reference_path("") == (None, None)  # '' skips, without a note
    monkeypatch.setenv("DYNAPLAN_SEED_REFERENCE", str(tmp_path / "gone.py"))
    assert main(["bench", "--device", "cpu"]) == 2
    assert "$DYNAPLAN_SEED_REFERENCE: seed reference not found" in capsys.readouterr().err
    assert main(["bench", "--device", "cpu", "--seed-reference", "nowhere.py"]) == 2
    assert "--seed-reference: seed reference not found: nowhere.py" in capsys.readouterr().err


def test_a_seed_reference_loads_one_needing_a_package_is_skipped_a_broken_one_refused(
        tmp_path):
    from dynaplan.app.bench_setup import load_seed_reference
    from dynaplan.errors import ConfigError

    pytest.importorskip("sklearn")
    mine = tmp_path / "mine.py"
    mine.write_text("VALUE = 3\n")
    assert load_seed_reference(mine)[0].VALUE == 3
    needs = tmp_path / "needs.py"
    needs.write_text("import no_such_package_here\n")
    module, note = load_seed_reference(needs)
    assert module is None and "'no_such_package_here'" in note
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(ConfigError, match="could not be loaded: SyntaxError"):
        load_seed_reference(broken)


def test_a_setting_whose_environment_cannot_be_made_is_skipped_in_one_line(monkeypatch,
                                                                           tmp_path, capsys):
    from dynaplan.app import bench
    from dynaplan.errors import ConfigError

    made = bench.random_data

    def without_mujoco(n, seed=0, env_id=bench.ENV):
        if env_id != bench.ENV:
            raise ConfigError(f"cannot make {env_id}: MuJoCo is not installed")
        return made(n, seed, env_id)

    monkeypatch.setattr(bench, "random_data", without_mujoco)
    out = tmp_path / "bench.json"
    assert main(["bench", "--calls", "1", "--warmup", "0", "--fit-epochs", "1", "--loop-steps",
                 "1", "--device", "cpu", "--seed-reference", "", "--settings", "b_seed_random",
                 "g_pets_inverted_pendulum", "--json", str(out)]) == 0
    assert [s["setting"] for s in json.loads(out.read_text())["settings"]] == ["b_seed_random"]
    err = capsys.readouterr().err
    assert "bench g_pets_inverted_pendulum skipped: cannot make InvertedPendulum-v5" in err
    assert "Traceback" not in err
