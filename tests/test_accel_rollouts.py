"""Every registered rollout accelerator returns what the reference objective returns (the
plain horizon loop of objective.py) for every model it runs, learned or known reward, with
a termination or none; CEM plans the same through it; it draws an ensemble's particles as
the reference does; it snapshots weights at `refresh()`. A new accelerator or model type is
covered by registering it (accel.ACCELERATORS, MODELS below)."""

import pytest
import torch
from objectives import (
    assert_cem_plans_agree,
    bn_models,
    ensemble_reward,
    kernel_runs_here,
    known_reward,
    objective,
    random_ensemble,
    reference,
    tsinf,
)

from dynaplan import accel
from dynaplan.accel.rollouts import kernel_refusal
from dynaplan.models import DeterministicEnsemble, EnsembleDynamics, GaussianEnsemble
from dynaplan.objective import ModelObjective, StepRollout

ROLLOUTS = [k for k, a in accel.ACCELERATORS.items() if a.role == "rollout"]


SMALL = (32, 24)
"""Hidden sizes of the seed's BatchNorm networks, cut down: Triton's interpreter (the CPU
tests) runs a tile at a time in numpy, and the seed's 512 x 256 layer takes it seconds a
step. The native kernel's own tests run the seed's sizes."""


def _mlp(obs_dim, act_dim, seed):
    return bn_models(obs_dim, act_dim, hidden=SMALL)[0]


def _mlp_silu(obs_dim, act_dim, seed):
    return bn_models(obs_dim, act_dim, hidden=(40, 40, 40), batch_norm=False,
                     activation="silu")[0]


def _ensemble(obs_dim, act_dim, seed):
    return tsinf(random_ensemble("silu", 3, obs_dim, act_dim), 6, seed=seed)


def _ensemble_relu_mean(obs_dim, act_dim, seed):
    return tsinf(random_ensemble("relu", 5, obs_dim, act_dim), 5, sample=False, seed=seed)


def _ensemble_ts1(obs_dim, act_dim, seed):
    return EnsembleDynamics(random_ensemble("silu", 4, obs_dim, act_dim), "ts1", 4,
                            generator=torch.Generator().manual_seed(seed))


def _ensemble_expectation(obs_dim, act_dim, seed):
    return EnsembleDynamics(random_ensemble("relu", 3, obs_dim, act_dim), "expectation", 1,
                            generator=torch.Generator().manual_seed(seed))


def _deterministic_ensemble(obs_dim, act_dim, seed):
    torch.manual_seed(0)
    members = DeterministicEnsemble(obs_dim + act_dim, obs_dim, members=3, hidden=(16,)).eval()
    return tsinf(members, 3, sample=False, seed=seed)


MODELS = {"mlp": _mlp, "mlp_silu": _mlp_silu, "ensemble": _ensemble,
          "ensemble_relu_mean": _ensemble_relu_mean, "ensemble_ts1": _ensemble_ts1,
          "ensemble_expectation": _ensemble_expectation,
          "deterministic_ensemble": _deterministic_ensemble}
"""Each model kind: (obs_dim, act_dim, generator seed) -> what an objective steps."""


def rises(obs, action, next_obs):
    """Terminates where the second state entry grows or the action is large: some rows
    early, some late, some never."""
    return (next_obs[..., 1] > obs[..., 1] + 0.01) | (action[..., 0] > 0.8)


def _reward(kind, obs_dim, act_dim):
    if kind == "known":
        return known_reward
    return bn_models(obs_dim, act_dim, hidden=SMALL)[1]


def _needs(kernel):
    if not kernel_runs_here(kernel):
        pytest.skip(f"{kernel} does not run here: {accel.why_not(kernel, 'cpu')}")


@pytest.mark.parametrize("kernel", ROLLOUTS)
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("reward", ["learned", "known"])
@pytest.mark.parametrize("termination", [None, rises], ids=["no_termination", "rises"])
def test_every_rollout_returns_the_reference(kernel, model, reward, termination):
    _needs(kernel)
    obs_dim, act_dim = (3, 1) if model.startswith("mlp") else (3, 2)
    rew = _reward(reward, obs_dim, act_dim)
    obs = torch.randn(2, obs_dim)
    actions = torch.rand(2, 9, 6, act_dim) * 2 - 1
    fast_dyn, ref_dyn = MODELS[model](obs_dim, act_dim, 4), MODELS[model](obs_dim, act_dim, 4)
    if kernel != "torch" and kernel_refusal(kernel, fast_dyn) is not None:
        pytest.skip(kernel_refusal(kernel, fast_dyn))  # refused in one line: tested below
    fast = objective(fast_dyn, rew, termination, kernel)
    known = not isinstance(fast_dyn, EnsembleDynamics) or isinstance(
        fast_dyn.ensemble, GaussianEnsemble)
    assert fast.kernel == (kernel if known else "reference")
    got = fast(obs, actions)
    want = ModelObjective(ref_dyn, rew, termination)(obs, actions)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    if isinstance(ref_dyn, EnsembleDynamics):  # the same draws, and as many
        assert torch.equal(fast_dyn.generator.get_state(), ref_dyn.generator.get_state())
    if termination is not None:  # some sequences do stop early
        assert (ModelObjective(ref_dyn, rew)(obs, actions) != want).any()


@pytest.mark.parametrize("kernel", ROLLOUTS)
@pytest.mark.parametrize("model", ["mlp", "ensemble"])
def test_cem_plans_the_same_through_every_rollout(kernel, model):
    _needs(kernel)
    obs_dim, act_dim = (3, 1) if model == "mlp" else (3, 2)
    rew = bn_models(obs_dim, act_dim, hidden=SMALL)[1] if model == "mlp" else ensemble_reward
    dyns = [MODELS[model](obs_dim, act_dim, 4) for _ in range(2)]
    objectives = [objective(dyns[0], rew), objective(dyns[1], rew, kernel=kernel)]
    low, high = [-1.0] * act_dim, [1.0] * act_dim
    assert_cem_plans_agree(objectives, low, high, 6, torch.randn(1, obs_dim),
                           num_sequences=40, num_iterations=3, num_elites=5)


@pytest.mark.parametrize("kernel", ROLLOUTS)
def test_a_rollout_repeats_itself_leaves_its_inputs_and_snapshots_at_refresh(kernel):
    _needs(kernel)
    dyn, rew = bn_models(hidden=SMALL)
    fast = objective(dyn, rew, kernel=kernel)
    obs, actions = torch.randn(1, 3), torch.rand(1, 8, 4, 1)
    obs_copy, actions_copy = obs.clone(), actions.clone()
    before = fast(obs, actions).clone()
    assert torch.equal(fast(obs, actions), before)  # buffers reused between calls
    assert torch.equal(obs, obs_copy) and torch.equal(actions, actions_copy)
    with torch.no_grad():
        dyn.net[-1].bias.add_(0.5)
        rew.net[-1].bias.add_(0.5)
    if kernel != "reference":
        assert torch.equal(fast(obs, actions), before)  # a snapshot until refresh()
    fast.refresh()
    after = fast(obs, actions)
    torch.testing.assert_close(after, reference(dyn, rew, None, obs, actions),
                               rtol=1e-4, atol=1e-4)
    assert not torch.allclose(after, before)


def test_a_model_no_accelerator_knows_runs_on_the_reference_path():
    def dynamics(state, action):  # a plain function: no weights to fold, no kernel
        return 0.9 * state + action.sum(-1, keepdim=True)

    for kernel in ("auto", "torch"):
        chosen = accel.select_rollout(kernel, dynamics, known_reward, None)
        assert isinstance(chosen, StepRollout) and chosen.name == "reference"
    obs, actions = torch.randn(2, 3), torch.rand(2, 5, 4, 1)
    got = objective(dynamics, known_reward, kernel="auto")(obs, actions)
    torch.testing.assert_close(got, reference(dynamics, known_reward, None, obs, actions))
    for kernel in ("native", "triton"):
        if kernel_runs_here(kernel):
            with pytest.raises(ValueError, match="does not run a function dynamics model"):
                accel.select_rollout(kernel, dynamics, known_reward, None)


def test_auto_takes_the_native_kernel_where_it_runs_else_the_fused_torch_path():
    dyn, rew = bn_models()
    want = "native" if kernel_runs_here("native") else "torch"
    assert objective(dyn, rew, kernel="auto").kernel == want
    ts1 = EnsembleDynamics(random_ensemble("silu", 3), "ts1", 3)
    assert objective(ts1, ensemble_reward, kernel="auto").kernel == "torch"
    assert objective(dyn.double(), rew.double(), kernel="auto").kernel == "torch"


@pytest.mark.parametrize("kernel", ["native", "triton"])
def test_the_kernels_refuse_what_they_cannot_run_in_one_line(kernel):
    _needs(kernel)
    for propagation in ("ts1", "expectation"):
        ens = EnsembleDynamics(random_ensemble("silu", 2), propagation, 2)
        with pytest.raises(ValueError, match=f"by tsinf only, not {propagation}"):
            accel.select_rollout(kernel, ens, known_reward, None)
    dyn, rew = bn_models()
    with pytest.raises(ValueError, match="replaces the fused torch path: not with compile"):
        accel.select_rollout(kernel, dyn, rew, None, compile=True)
    with pytest.raises(ValueError, match="unknown rollout kernel 'cuda'"):
        accel.select_rollout("cuda", dyn, rew, None)


@pytest.mark.parametrize("reward", ["learned", "known"])
def test_the_compiled_torch_path_returns_the_reference(reward):
    # `dynaplan bench --compile`: torch.compile of the fused networks and step on the CPU
    pytest.importorskip("torch._inductor")
    dyn, rew = bn_models()
    rew = rew if reward == "learned" else known_reward
    obs = torch.randn(2, 3)
    actions = torch.rand(2, 16, 7, 1) * 4 - 2
    compiled = objective(dyn, rew, kernel="torch", compile=True)
    want = reference(dyn, rew, None, obs, actions)
    for _ in range(2):  # the first call compiles, the second runs the compiled code
        torch.testing.assert_close(compiled(obs, actions), want, rtol=1e-4, atol=1e-4)


def test_tf32_is_on_inside_a_rollout_only():
    """`tf32` switches cuBLAS to TF32 for the rollouts and restores the process's setting
    (on a CPU it changes nothing else: the returns are the float32 ones)."""
    seen = []
    dyn, _ = bn_models()

    def recording_dynamics(state, action):
        seen.append(torch.backends.cuda.matmul.allow_tf32)
        return dyn(state, action)

    obs, actions = torch.randn(2, 3), torch.rand(2, 8, 4, 1) * 4 - 2
    before = torch.backends.cuda.matmul.allow_tf32
    fast = objective(recording_dynamics, known_reward, tf32=True)(obs, actions)
    assert set(seen) == {True} and torch.backends.cuda.matmul.allow_tf32 == before
    seen.clear()
    plain = objective(recording_dynamics, known_reward)(obs, actions)
    assert set(seen) == {before} and torch.equal(fast, plain)
