"""On a GPU the fused planning networks return what the modules return, and what the same
networks return on the CPU (needs a GPU; skipped without one, with the reason shown)."""

import pytest
import torch
from test_fused_ensemble import random_ensemble, reward
from test_objective_paths import _bn_models, known_reward

from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.planners import ModelObjective

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def returns(dynamics, rew, obs, actions, device, fused):
    return ModelObjective(dynamics, rew, fused=fused)(
        obs.to(device), actions.to(device)).cpu()


@pytest.mark.parametrize("learned_reward", [True, False])
def test_fused_mlps_on_the_gpu_match_the_module_and_the_cpu(learned_reward):
    dyn, rew = _bn_models()
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
    from conftest import TINY

    from dynaplan.cli import main

    dyn, rew = _bn_models()
    dyn, rew = dyn.to(CUDA), rew.to(CUDA)
    obs, actions = torch.randn(1, 3), torch.rand(1, 256, 10, 1) * 4 - 2
    full, tf32 = (ModelObjective(dyn, rew, tf32=t)(obs.to(CUDA), actions.to(CUDA)).cpu()
                  for t in (False, True))
    torch.testing.assert_close(tf32, full, rtol=2e-2, atol=2e-2)
    # the sequence TF32 ranks best is among float32's five best
    assert tf32[0].argmax().item() in full[0].topk(5).indices.tolist()
    flags = [f for f in TINY if f not in ("--device", "cpu")]
    assert main(["train", *flags, "--device", "cuda", "--tf32", "on",
                 "--out", str(tmp_path / "run")]) == 0
