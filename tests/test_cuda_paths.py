"""On a GPU the fused planning networks return what the modules return, and what the same
networks return on the CPU (needs a GPU; skipped without one, with the reason shown)."""

import pytest
import torch
from objectives import bn_models, known_reward, objective, random_ensemble
from objectives import ensemble_reward as reward

from dynaplan.models import EnsembleDynamics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def returns(dynamics, rew, obs, actions, device, fused):
    """Returns through the fused torch path (`fused`) or the reference."""
    kernel = "torch" if fused else "reference"
    return objective(dynamics, rew, kernel=kernel)(obs.to(device), actions.to(device)).cpu()


@pytest.mark.parametrize("learned_reward", [True, False])
def test_fused_mlps_on_the_gpu_match_the_module_and_the_cpu(learned_reward):
    dyn, rew = bn_models()
    rew = rew if learned_reward else known_reward
    obs, actions = torch.randn(2, 3), torch.rand(2, 64, 10, 1) * 4 - 2
    on_cpu = returns(dyn, rew, obs, actions, "cpu", True)
    dyn = dyn.to(CUDA)
    rew = rew.to(CUDA) if learned_reward else rew
    fused, plain = (returns(dyn, rew, obs, actions, CUDA, f) for f in (True, False))
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(fused, on_cpu, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("propagation", ["tsinf", "ts1", "expectation"])
def test_fused_ensemble_on_the_gpu_plans_as_the_module(propagation):
    ens = random_ensemble("silu", 4).to(CUDA)
    particles = 1 if propagation == "expectation" else 4
    obs, actions = torch.randn(1, 3), torch.rand(1, 37, 6, 2) * 2 - 1
    got = []
    for fused in (True, False):
        dyn = EnsembleDynamics(ens, propagation, particles,
                               generator=torch.Generator(device=CUDA).manual_seed(3))
        got.append(returns(dyn, reward, obs, actions, CUDA, fused))
    torch.testing.assert_close(got[0], got[1], rtol=1e-4, atol=1e-3)
    if propagation == "expectation":  # no draws: the CPU gives the same returns
        dyn = EnsembleDynamics(ens.cpu(), propagation, particles)
        torch.testing.assert_close(got[0], returns(dyn, reward, obs, actions, "cpu", True),
                                   rtol=1e-4, atol=1e-3)


def test_tf32_plans_rank_as_float32_and_a_run_takes_the_switch(tmp_path):
    from conftest import TINY_NO_DEVICE

    from dynaplan.app.cli import main

    dyn, rew = bn_models()
    dyn, rew = dyn.to(CUDA), rew.to(CUDA)
    obs, actions = torch.randn(1, 3), torch.rand(1, 256, 10, 1) * 4 - 2
    full, tf32 = (objective(dyn, rew, kernel="torch", tf32=t)(obs.to(CUDA),
                                                              actions.to(CUDA)).cpu()
                  for t in (False, True))
    torch.testing.assert_close(tf32, full, rtol=2e-2, atol=2e-2)
    # the sequence TF32 ranks best is among float32's five best
    assert tf32[0].argmax().item() in full[0].topk(5).indices.tolist()
    assert main(["train", *TINY_NO_DEVICE, "--device", "cuda", "--tf32", "on",
                 "--out", str(tmp_path / "run")]) == 0


@pytest.mark.parametrize("net", [
    dict(hidden=(200, 200, 200, 200), batch_norm=False, activation="silu"),  # setting c's
    dict(),  # the seed's 512-256 BatchNorm network
])
def test_triton_kernel_compiled_equals_the_torch_path(net, tmp_path):
    pytest.importorskip("triton")
    from conftest import TINY_NO_DEVICE

    from dynaplan.app.cli import main

    dyn, rew = bn_models(**net)
    dyn, rew = dyn.to(CUDA), rew.to(CUDA)
    obs, actions = torch.randn(1, 3, device=CUDA), torch.rand(1, 500, 30, 1, device=CUDA) * 4 - 2
    for r in (known_reward, rew):
        torch_path, kernel = (objective(dyn, r, kernel=k)(obs, actions).cpu()
                              for k in ("torch", "triton"))
        torch.testing.assert_close(kernel, torch_path, rtol=1e-4, atol=1e-3)
    tf32 = objective(dyn, known_reward, kernel="triton", tf32=True)(obs, actions).cpu()
    full = objective(dyn, known_reward, kernel="torch")(obs, actions).cpu()
    torch.testing.assert_close(tf32, full, rtol=2e-2, atol=2e-2)
    assert tf32[0].argmax().item() in full[0].topk(5).indices.tolist()
    assert main(["train", *TINY_NO_DEVICE, "--device", "cuda", "--rollout-kernel", "triton",
                 "--cuda-graph", "on", "--out", str(tmp_path / "run")]) == 0


def test_triton_kernel_through_a_cuda_graph_plans_as_eager():
    pytest.importorskip("triton")
    from test_cuda_graph import planner_pair, same_plans

    from dynaplan.accel.graphed import GraphedPlanner

    dyn, _ = bn_models(hidden=(200, 200, 200, 200), batch_norm=False, activation="silu")
    kernel = objective(dyn.to(CUDA), known_reward, kernel="triton")
    eager, inner = planner_pair("cem", kernel, num_sequences=500, num_iterations=5,
                                num_elites=50)
    same_plans(eager, GraphedPlanner(inner), torch.randn(1, 3, device=CUDA))


def test_triton_ensemble_kernel_compiled_plans_as_the_torch_path(tmp_path):
    pytest.importorskip("triton")
    from conftest import TINY_NO_DEVICE

    from dynaplan.app.cli import main

    ens = random_ensemble("silu", 4).to(CUDA)  # 4 of 5 members kept; setting d's rows
    obs, actions = torch.randn(1, 3, device=CUDA), torch.rand(1, 500, 30, 2, device=CUDA) * 2 - 1
    got = []
    for kernel in ("torch", "triton"):
        dyn = EnsembleDynamics(ens, "tsinf", 20,
                               generator=torch.Generator(device=CUDA).manual_seed(3))
        got.append(objective(dyn, reward, kernel=kernel)(obs, actions).cpu())
    torch.testing.assert_close(got[1], got[0], rtol=1e-4, atol=1e-3)
    assert main(["train", *TINY_NO_DEVICE, "--device", "cuda", "--dynamics", "ensemble",
                 "--propagation", "tsinf", "--particles", "5", "--rollout-kernel", "triton",
                 "--cuda-graph", "on", "--out", str(tmp_path / "run")]) == 0
