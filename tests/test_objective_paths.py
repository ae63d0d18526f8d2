"""ModelObjective's fast paths return what a plain step-by-step rollout returns: the seed's
joint rollout (heads applied in place), a fused dynamics network with a known reward
evaluated once over all steps, and a known termination applied after the loop."""

import pytest
import torch

from dynaplan.models import DynamicsModel, RewardModel
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.planners import ModelObjective, make_planner


def _bn_models(obs_dim=3, act_dim=1, **net):
    """Models with non-trivial normalizers and BatchNorm statistics (eval mode)."""
    torch.manual_seed(0)
    dyn, rew = DynamicsModel(obs_dim, act_dim, **net), RewardModel(obs_dim, act_dim, **net)
    x = torch.randn(256, obs_dim + act_dim) * 2 + 0.5
    for m, y in ((dyn, torch.randn(256, obs_dim) * 0.3), (rew, torch.randn(256, 1) * 4 - 2)):
        m.input_norm.fit(x)
        m.output_norm.fit(y)
        m.train()
        with torch.no_grad():
            for _ in range(3):  # BatchNorm running statistics away from 0 / 1
                m.net(m.input_norm.normalize(x) * 1.5 + 0.2)
        m.eval()
    return dyn, rew


def reference(dynamics, reward, termination, obs, actions):
    """The definition: s_{t+1} = f(s_t, a_t), r_t counted until (and including) the
    first predicted termination, summed over the horizon."""
    B, N, H, A = actions.shape
    state = obs[:, None].expand(B, N, obs.shape[-1]).reshape(B * N, -1)
    flat = actions.reshape(B * N, H, A)
    total = torch.zeros(B * N)
    alive = torch.ones(B * N, dtype=torch.bool)
    with torch.no_grad():
        for t in range(H):
            nxt = dynamics(state, flat[:, t])
            r = reward(state, flat[:, t], nxt)
            total += torch.where(alive, r, torch.zeros_like(r))
            if termination is not None:
                alive &= ~termination(state, flat[:, t], nxt)
            state = nxt
    return total.view(B, N)


def assert_cem_plans_agree(objectives, low, high, horizon, obs, **options):
    """CEM, seeded alike, plans through every objective what it plans through the first:
    the same actions, and predicted returns within 1e-4 (the rollout kernels' tests)."""
    plans = [make_planner("cem", objective, torch.tensor(low), torch.tensor(high), horizon,
                          torch.Generator().manual_seed(0), **options).plan(obs)
             for objective in objectives]
    for plan in plans[1:]:
        torch.testing.assert_close(plan.actions, plans[0].actions)
        torch.testing.assert_close(plan.predicted_return, plans[0].predicted_return,
                                   rtol=1e-4, atol=1e-4)


def assert_ensemble_returns_agree(kernel, ensemble, keep, sample, reward):
    """A TS-inf objective over `ensemble` (`keep` kept members, 2 particles each) returns
    through `kernel` what it returns through torch ops, within 1e-4, from the same draws:
    each generator, seeded alike, ends in the same state."""
    obs, actions = torch.randn(2, 3), torch.rand(2, 7, 5, 2) * 2 - 1
    got = []
    for name in ("torch", kernel):
        dyn = EnsembleDynamics(ensemble, "tsinf", 2 * keep, sample=sample,
                               generator=torch.Generator().manual_seed(4))
        objective = ModelObjective(dyn, reward, kernel=name)
        assert objective.kernel == name
        got.append((objective(obs, actions), dyn.generator.get_state()))
    (want, want_gen), (value, gen) = got
    torch.testing.assert_close(value, want, rtol=1e-4, atol=1e-4)
    assert torch.equal(gen, want_gen)  # the same draws, and as many


def assert_ensemble_cem_agrees(kernel, ensemble, reward):
    """CEM plans through a TS-inf objective over `ensemble` (3 kept members, 6 particles)
    on `kernel` what it plans through torch ops, from the same draws, and as many."""
    dyns = [EnsembleDynamics(ensemble, "tsinf", 6, generator=torch.Generator().manual_seed(4))
            for _ in range(2)]
    objectives = [ModelObjective(dyn, reward, kernel=name)
                  for dyn, name in zip(dyns, ("torch", kernel))]
    assert_cem_plans_agree(objectives, [-1.0, -1.0], [1.0, 1.0], 4, torch.randn(1, 3),
                           num_sequences=16, num_iterations=2, num_elites=4)
    assert torch.equal(dyns[1].generator.get_state(), dyns[0].generator.get_state())


def assert_refuses_missing_noise(rollout):
    """A sampled rollout over a 3-member ensemble (3 observations, 2 actions) refuses noise
    of the wrong shape, and rows that are not a multiple of the members, in one line."""
    state, actions = torch.zeros(6, 3), torch.zeros(6, 2, 2)
    with pytest.raises(ValueError, match=r"needs noise of shape \(2, 3, 2, 3\)"):
        rollout(state, actions)
    with pytest.raises(ValueError, match="multiple of the members"):
        rollout(torch.zeros(5, 3), torch.zeros(5, 2, 2), torch.zeros(2, 3, 1, 3))


def step_by_step(dyn, state, actions):
    """The states [R, H + 1, O] the dynamics model predicts along actions [R, H, A]."""
    states = [state]
    with torch.no_grad():
        for t in range(actions.shape[1]):
            states.append(dyn(states[-1], actions[:, t]))
    return torch.stack(states, dim=1)


def known_reward(obs, action, next_obs):
    return -(obs**2).sum(-1) - 0.1 * action[..., 0] ** 2 + 0.5 * next_obs[..., 0]


def leaves_box(obs, action, next_obs):
    return next_obs[..., 1].abs() > 1.0


@pytest.mark.parametrize("fused", [True, False])
def test_joint_rollout_equals_the_step_by_step_definition(fused):
    dyn, rew = _bn_models()
    obs = torch.randn(2, 3)
    actions = torch.rand(2, 16, 7, 1) * 4 - 2
    got = ModelObjective(dyn, rew, fused=fused)(obs, actions)
    want = reference(dyn, rew, None, obs, actions)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("termination", [None, leaves_box])
@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_known_reward_over_all_steps_equals_the_definition(termination, activation):
    dyn, _ = _bn_models(hidden=(32, 32, 32), batch_norm=False, activation=activation)
    obs = torch.randn(3, 3)
    actions = torch.rand(3, 20, 9, 1) * 4 - 2
    want = reference(dyn, known_reward, termination, obs, actions)
    for fused in (True, False):
        got = ModelObjective(dyn, known_reward, termination, fused=fused)(obs, actions)
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)
    if termination is not None:  # some sequences do stop early
        assert (reference(dyn, known_reward, None, obs, actions) != want).any()


def test_learned_reward_with_termination_equals_the_definition():
    dyn, rew = _bn_models()
    obs = torch.randn(2, 3) * 0.3
    actions = torch.rand(2, 12, 6, 1) * 4 - 2
    want = reference(dyn, rew, leaves_box, obs, actions)
    got = ModelObjective(dyn, rew, leaves_box)(obs, actions)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)


def test_joint_rollout_reuses_its_buffers_and_leaves_inputs_alone():
    dyn, rew = _bn_models()
    objective = ModelObjective(dyn, rew)
    obs, actions = torch.randn(1, 3), torch.rand(1, 10, 5, 1)
    obs_copy, actions_copy = obs.clone(), actions.clone()
    first = objective(obs, actions).clone()
    again = objective(obs, actions)
    assert torch.equal(first, again)
    assert torch.equal(obs, obs_copy) and torch.equal(actions, actions_copy)


@pytest.mark.parametrize("reward", ["learned", "known"])
def test_compiled_path_equals_the_definition(reward):
    # `dynaplan bench --compile`: torch.compile of the fused networks and step on the CPU
    pytest.importorskip("torch._inductor")
    dyn, rew = _bn_models()
    rew = rew if reward == "learned" else known_reward
    obs = torch.randn(2, 3)
    actions = torch.rand(2, 16, 7, 1) * 4 - 2
    objective = ModelObjective(dyn, rew, compile=True)
    want = reference(dyn, rew, None, obs, actions)
    for _ in range(2):  # the first call compiles, the second runs the compiled code
        assert torch.allclose(objective(obs, actions), want, rtol=1e-4, atol=1e-4)


def test_tf32_is_on_inside_a_plan_call_only():
    """`tf32` switches cuBLAS to TF32 for the rollouts and restores the process's setting
    (on a CPU it changes nothing else: the returns are the float32 ones)."""
    seen = []

    def recording_reward(obs, action, next_obs):
        seen.append(torch.backends.cuda.matmul.allow_tf32)
        return known_reward(obs, action, next_obs)

    dyn, _ = _bn_models()
    obs, actions = torch.randn(2, 3), torch.rand(2, 8, 4, 1) * 4 - 2
    before = torch.backends.cuda.matmul.allow_tf32
    fast = ModelObjective(dyn, recording_reward, tf32=True)(obs, actions)
    assert seen == [True] and torch.backends.cuda.matmul.allow_tf32 == before
    plain = ModelObjective(dyn, recording_reward)(obs, actions)
    assert seen == [True, before] and torch.equal(fast, plain)
