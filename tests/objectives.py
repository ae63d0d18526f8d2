"""Models, rewards and the step-by-step definition the objective tests compare against
(imported by the test modules; not a test module itself)."""

import pytest
import torch

from dynaplan import accel
from dynaplan.models import DynamicsModel, EnsembleDynamics, GaussianEnsemble, RewardModel
from dynaplan.objective import ModelObjective
from dynaplan.planners import make_planner


def bn_models(obs_dim=3, act_dim=1, **net):
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


def random_ensemble(activation: str, keep: int, obs_dim: int = 3,
                    act_dim: int = 2) -> GaussianEnsemble:
    """A 5-member ensemble with fitted normalizers, tight variance bounds and `keep` of its
    members kept (members 1, 3, 4, 0, 2 in order of a made-up validation loss)."""
    torch.manual_seed(0)
    inputs = obs_dim + act_dim
    ens = GaussianEnsemble(inputs, obs_dim, members=5, hidden=(16, 16), activation=activation)
    ens.input_norm.fit(torch.randn(50, inputs) * torch.linspace(0.5, 3.0, inputs) + 0.3)
    ens.output_norm.fit(torch.randn(50, obs_dim) * torch.linspace(0.1, 2.0, obs_dim) - 0.2)
    with torch.no_grad():
        ens.max_logvar.fill_(0.3)
        ens.min_logvar.fill_(-3.0)
    ens.keep(torch.tensor([0.5, 0.1, 0.9, 0.2, 0.3]), keep)
    return ens.eval()


def reference(dynamics, reward, termination, obs, actions):
    """The definition: s_{t+1} = f(s_t, a_t), r_t counted until (and including) the
    first predicted termination, summed over the horizon (one particle)."""
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


def step_by_step(dyn, state, actions):
    """The states [R, H + 1, O] the dynamics model predicts along actions [R, H, A]."""
    states = [state]
    with torch.no_grad():
        for t in range(actions.shape[1]):
            states.append(dyn(states[-1], actions[:, t]))
    return torch.stack(states, dim=1)


def known_reward(obs, action, next_obs):
    return -(obs**2).sum(-1) - 0.1 * action[..., 0] ** 2 + 0.5 * next_obs[..., 0]


def ensemble_reward(state, action, next_state):
    return -(next_state ** 2).sum(-1) - 0.1 * (action ** 2).sum(-1)


def leaves_box(obs, action, next_obs):
    return next_obs[..., 1].abs() > 1.0


def objective(dynamics, reward, termination=None, kernel="reference", **options):
    """A ModelObjective whose rollouts run as `kernel` (accel.select_rollout)."""
    rollout = accel.select_rollout(kernel, dynamics, reward, termination, **options)
    return ModelObjective(dynamics, reward, termination, rollout=rollout)


def kernel_runs_here(kernel: str) -> bool:
    """Whether rollout `kernel` can run in this test process: on the CPU, Triton's kernel in
    Triton's interpreter (tests/conftest.py sets it) where the triton package is."""
    if kernel == "triton":
        return accel.ACCELERATORS["triton"].check() is None  # type: ignore[misc]
    return accel.why_not(kernel, torch.device("cpu")) is None


def assert_cem_plans_agree(objectives, low, high, horizon, obs, **options):
    """CEM, seeded alike, plans through every objective what it plans through the first:
    the same actions, and predicted returns within 1e-4."""
    plans = [make_planner("cem", o, torch.tensor(low), torch.tensor(high), horizon,
                          torch.Generator().manual_seed(0), **options).plan(obs)
             for o in objectives]
    for plan in plans[1:]:
        torch.testing.assert_close(plan.actions, plans[0].actions)
        torch.testing.assert_close(plan.predicted_return, plans[0].predicted_return,
                                   rtol=1e-4, atol=1e-4)


def assert_refuses_missing_noise(rollout):
    """A sampled rollout over a 3-member ensemble (3 observations, 2 actions) refuses noise
    of the wrong shape, and rows that are not a multiple of the members, in one line."""
    state, actions = torch.zeros(6, 3), torch.zeros(6, 2, 2)
    with pytest.raises(ValueError, match=r"needs noise of shape \(2, 3, 2, 3\)"):
        rollout(state, actions)
    with pytest.raises(ValueError, match="multiple of the members"):
        rollout(torch.zeros(5, 3), torch.zeros(5, 2, 2), torch.zeros(2, 3, 1, 3))


def tsinf(ensemble, particles, sample=True, seed=4):
    """A TS-inf propagation of `ensemble` drawing from a generator seeded `seed`."""
    return EnsembleDynamics(ensemble, "tsinf", particles, sample=sample,
                            generator=torch.Generator().manual_seed(seed))
