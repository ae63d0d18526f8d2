"""CEM options, iCEM, MPPI and the agent's warm start: analytic optima, bounds, NaN last,
stable MPPI weights, colored noise spectra, the shift of the previous plan."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from dynaplan.agent import MPCAgent, shift
from dynaplan.errors import ConfigError
from dynaplan.planners import (
    CEMPlanner,
    ICEMPlanner,
    MPPIPlanner,
    Plan,
    Planner,
    make_planner,
    planner_options,
)
from dynaplan.planners.mppi import softmax_weights
from dynaplan.planners.noise import colored_noise, smooth_noise, truncated_normal

H, A = 6, 2
LOW, HIGH = np.array([-1.0, -2.0]), np.array([1.0, 2.0])
LOW_T, HIGH_T = torch.tensor(LOW, dtype=torch.float32), torch.tensor(HIGH, dtype=torch.float32)

# enough samples for each planner to reach the optimum of DistanceObjective in one call
STRONG = {
    "cem": dict(num_sequences=300, num_iterations=8, num_elites=30),
    "icem": dict(num_sequences=300, num_iterations=8, num_elites=30),
    "mppi": dict(num_sequences=500, num_iterations=10, temperature=0.02, noise_std=0.2),
}


class DistanceObjective:
    """-||actions - target(obs)||^2 with the target read from obs: [B, H*A]; records the
    number of candidates N of every call."""

    def __init__(self):
        self.sizes = []

    def __call__(self, obs, actions):
        self.sizes.append(actions.shape[1])
        target = obs.view(obs.shape[0], 1, H, A)
        return -((actions - target) ** 2).sum(dim=(2, 3))


def make(name, objective=None, seed=0, **options):
    gen = torch.Generator().manual_seed(seed)
    return make_planner(name, objective or DistanceObjective(), LOW, HIGH, H, gen, **options)


def smooth_targets(batch, seed=1):
    """Smooth optima [B, H, A] inside the bounds (a sine per action dimension)."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(batch, 1, A, generator=g) * 2 * math.pi
    t = torch.arange(H, dtype=torch.float32)[None, :, None]
    out = 0.6 * torch.sin(0.4 * t + phase)
    out[..., 1] *= 2
    return out


def inside(actions):
    return bool((actions >= LOW_T - 1e-6).all() and (actions <= HIGH_T + 1e-6).all())


# -- each planner finds the optimum -----------------------------------------------------


@pytest.mark.parametrize(
    "name, options",
    [
        ("icem", STRONG["icem"]),
        ("mppi", STRONG["mppi"]),
        ("mppi", dict(STRONG["mppi"], smoothing=0.5)),
        ("cem", dict(STRONG["cem"], alpha=0.1)),
        ("cem", dict(STRONG["cem"], init_std=0.5)),
        ("cem", dict(STRONG["cem"], sampling="truncnorm")),
        ("cem", dict(STRONG["cem"], return_mean=True)),
        ("icem", dict(STRONG["icem"], sampling="truncnorm")),
    ],
)
def test_planner_reaches_the_optimum_for_each_start_state(name, options):
    target = smooth_targets(3)
    plan = make(name, **options).plan(target.view(3, -1))
    assert plan.actions.shape == (3, H, A) and plan.action.shape == (3, A)
    assert torch.allclose(plan.actions, target, atol=0.3)
    assert torch.equal(plan.action, plan.actions[:, 0])
    # the reported return is the objective's value of the returned sequence
    expected = -((plan.actions - target) ** 2).sum(dim=(1, 2))
    assert torch.allclose(plan.predicted_return, expected, atol=1e-5)
    assert (plan.predicted_return > -0.25).all()


def test_cem_return_mean_returns_the_final_mean_not_a_sample():
    objective = DistanceObjective()
    target = smooth_targets(2)
    plan = make("cem", objective, **STRONG["cem"], return_mean=True).plan(target.view(2, -1))
    assert objective.sizes[-1] == 1  # the mean is scored by one more call
    assert len(objective.sizes) == STRONG["cem"]["num_iterations"] + 1
    assert torch.allclose(plan.actions, target, atol=0.1)


# -- bounds and NaN ------------------------------------------------------------------

VARIANTS = [
    ("icem", {}),
    ("icem", dict(sampling="truncnorm")),
    ("mppi", {}),
    ("mppi", dict(sampling="truncnorm", smoothing=0.8)),
    ("cem", dict(init_std=2.0, alpha=0.5)),
    ("cem", dict(sampling="truncnorm", return_mean=True)),
    ("random", {}),
]


@pytest.mark.parametrize("name, options", VARIANTS)
def test_actions_stay_inside_bounds_when_optimum_is_outside(name, options):
    target = torch.full((2, H, A), 5.0)  # far above HIGH
    planner = make(name, **options)
    plan = planner.plan(target.view(2, -1))
    assert inside(plan.actions)
    # a warm start at the opposite bound keeps them inside too
    plan = planner.plan(target.view(2, -1), init_mean=LOW_T.expand(2, H, A).clone())
    assert inside(plan.actions) and (plan.elites is None or inside(plan.elites))


@pytest.mark.parametrize("name", STRONG)
def test_optimizers_move_to_the_bound_closest_to_an_outside_optimum(name):
    target = torch.full((2, H, A), 5.0)
    plan = make(name, **STRONG[name]).plan(target.view(2, -1))
    assert inside(plan.actions)
    assert (plan.actions.mean(dim=(0, 1)) > 0.8 * HIGH_T).all()


@pytest.mark.parametrize("name, options", VARIANTS)
def test_nan_returns_rank_last(name, options):
    def objective(obs, actions):
        score = -((actions - 0.5) ** 2).sum(dim=(2, 3))
        return torch.where(actions[:, :, 0, 0] > 0, torch.nan, score)  # optimum region is NaN

    plan = make(name, objective, **options).plan(torch.zeros(2, 3))
    assert torch.isfinite(plan.predicted_return).all()
    assert (plan.action[:, 0] <= 0).all()


def test_mppi_weights_nan_zero_and_all_nan_row_keeps_the_mean():
    returns = torch.tensor([[1.0, torch.nan, 0.0], [torch.nan, torch.nan, torch.nan]])
    w = softmax_weights(returns, temperature=1.0)
    assert w[0, 1] == 0 and torch.allclose(w[0].sum(), torch.tensor(1.0))
    assert torch.allclose(w[0, 0] / w[0, 2], torch.tensor(math.e))
    assert (w[1] == 0).all()

    planner = make("mppi", lambda obs, actions: torch.full(actions.shape[:2], torch.nan))
    init = torch.full((1, H, A), 0.25)
    plan = planner.plan(torch.zeros(1, 3), init_mean=init)
    assert torch.equal(plan.actions, init)


@pytest.mark.parametrize("scale", [1e6, 1e30])
def test_mppi_weights_are_stable_for_huge_returns(scale):
    returns = scale + torch.tensor([[0.0, -1.0, -2.0, torch.inf * -1]])
    w = softmax_weights(returns, temperature=1.0)
    assert torch.isfinite(w).all() and torch.allclose(w.sum(), torch.tensor(1.0))
    assert w.argmax() == 0 and w[0, 3] == 0
    huge = torch.tensor([[3e38, 1e38, -3e38]])  # differences overflow float32 too
    w = softmax_weights(huge, temperature=1e-3)
    assert torch.equal(w, torch.tensor([[1.0, 0.0, 0.0]]))


# -- sampling -------------------------------------------------------------------------


def low_frequency_power(x):
    """Fraction of the power of series x [..., H, A] (along H) in the lower half of the
    nonzero frequencies."""
    power = torch.fft.rfft(x, dim=-2).abs().pow(2).mean(dim=(0, -1))[1:]  # [F-1]
    half = power.shape[0] // 2
    return float(power[:half].sum() / power.sum())


def test_colored_noise_beta_0_is_white_and_beta_2_is_red():
    g = torch.Generator().manual_seed(0)
    horizon = 32
    white = colored_noise(0.0, (4000, horizon, A), g)
    red = colored_noise(2.0, (4000, horizon, A), g)
    for x in (white, red):  # unit variance at every step and action dimension
        assert torch.allclose(x.var(dim=0), torch.ones(horizon, A), atol=0.1)
    lag1 = lambda x: float((x[:, 1:] * x[:, :-1]).mean())  # noqa: E731
    assert abs(lag1(white)) < 0.03 and lag1(red) > 0.7
    assert abs(low_frequency_power(white) - 0.5) < 0.05  # flat spectrum
    assert low_frequency_power(red) > 0.9  # most power at low frequencies
    # action dimensions are independent
    assert abs(float((red[..., 0] * red[..., 1]).mean())) < 0.05


@pytest.mark.parametrize("horizon", [1, 2, 7, 15])
@pytest.mark.parametrize("beta", [0.0, 2.5])
def test_colored_noise_has_unit_variance_for_any_horizon(horizon, beta):
    g = torch.Generator().manual_seed(0)
    x = colored_noise(beta, (3, 4000, horizon, A), g)
    assert x.shape == (3, 4000, horizon, A)
    assert torch.allclose(x.var(dim=(0, 1)), torch.ones(horizon, A), atol=0.1)


def test_smoothed_noise_keeps_unit_variance_and_correlates_in_time():
    g = torch.Generator().manual_seed(0)
    x = smooth_noise(torch.randn((20000, H, A), generator=g), 0.8)
    assert torch.allclose(x.var(dim=0), torch.ones(H, A), atol=0.05)
    assert abs(float((x[:, 1:] * x[:, :-1]).mean()) - 0.8) < 0.03


def test_truncated_normal_stays_inside_without_piling_on_the_bounds():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn((1, 20000, H, A), generator=g)
    mean, std = HIGH_T.expand(1, 1, H, A), torch.ones(1, 1, H, A)  # mean on the bound
    x = truncated_normal(mean, std, noise, LOW_T, HIGH_T)
    assert inside(x)
    assert float((x == HIGH_T).float().mean()) < 0.01  # clipping would put half there
    clipped = torch.clamp(mean + std * noise, LOW_T, HIGH_T)
    assert float((clipped == HIGH_T).float().mean()) > 0.45


# -- iCEM's schedule and memory -------------------------------------------------------


def test_icem_population_decays_and_keeps_elites_and_the_mean():
    objective = DistanceObjective()
    planner = make("icem", objective, num_sequences=100, num_iterations=4, num_elites=10)
    plan = planner.plan(smooth_targets(2).view(2, -1))
    # N_i = max(100 * 1.25^-i, 20), + 3 kept elites after the first round, + the mean last
    assert objective.sizes == [100, 80 + 3, 64 + 3, 51 + 3 + 1]
    assert plan.elites.shape == (2, 3, H, A)
    assert torch.equal(plan.elites[:, 0], plan.actions)  # the best is the first elite
    objective.sizes.clear()
    planner.plan(smooth_targets(2).view(2, -1), init_elites=shift(plan.elites, None))
    assert objective.sizes[0] == 100 + 3  # last step's elites join the first round


def test_icem_population_never_below_twice_the_elites():
    objective = DistanceObjective()
    make(
        "icem", objective, num_sequences=30, num_iterations=5, num_elites=10, keep_fraction=0.0
    ).plan(torch.zeros(1, H * A))
    assert objective.sizes == [30, 24, 20, 20, 20 + 1]


@pytest.mark.parametrize("name", ["icem", "mppi", "cem"])
def test_same_seed_same_plan(name):
    obs = smooth_targets(2).view(2, -1)
    a = make(name, seed=7, sampling="truncnorm").plan(obs)
    b = make(name, seed=7, sampling="truncnorm").plan(obs)
    assert torch.equal(a.actions, b.actions)


# -- warm start in the agent ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A planner without options."""


class RecordingPlanner(Planner):
    """Returns a known plan, actions[b, t, a] = 100 * call + 10 * t + a + b / 10, and
    records the warm start it received."""

    Options = NoOptions
    warm_start = True

    def __init__(self, with_elites=False):
        super().__init__(None, LOW * 1000, HIGH * 1000, H, torch.Generator())
        self.with_elites, self.calls, self.plans = with_elites, [], []

    def plan(self, obs, init_mean=None, init_elites=None):
        self.calls.append((init_mean, init_elites))
        b = obs.shape[0]
        t = torch.arange(H, dtype=torch.float32)[None, :, None]
        a = torch.arange(A, dtype=torch.float32)[None, None, :]
        rows = obs[:, :1, None]  # row identity read from obs
        actions = 100 * len(self.calls) + 10 * t + a + rows / 10 + torch.zeros(b, H, A)
        elites = torch.stack([actions, actions + 0.5], dim=1) if self.with_elites else None
        self.plans.append(Plan(actions[:, 0], actions, torch.zeros(b), elites))
        return self.plans[-1]


def test_shift_moves_the_plan_one_step_and_fills_the_end():
    seq = torch.arange(H * A, dtype=torch.float32).view(1, H, A)
    fill = torch.tensor([-7.0, 7.0])
    assert torch.equal(shift(seq, fill), torch.cat([seq[:, 1:], fill.view(1, 1, A)], dim=1))
    assert torch.equal(shift(seq, None), torch.cat([seq[:, 1:], seq[:, -1:]], dim=1))


@pytest.mark.parametrize("fill", ["center", "repeat"])
def test_agent_passes_the_previous_plan_shifted_by_one_step(fill):
    planner = RecordingPlanner(with_elites=True)
    agent = MPCAgent(planner, torch.device("cpu"), fill=fill)
    obs = np.array([[0.0, 0.0], [1.0, 0.0]])
    agent.act(obs)
    agent.act(obs)
    init_mean, init_elites = planner.calls[1]
    prev = planner.plans[0].actions  # [a1 .. aH] of the first call
    end = planner.center.expand(2, 1, A) if fill == "center" else prev[:, -1:]
    assert torch.equal(init_mean, torch.cat([prev[:, 1:], end], dim=1))  # [a2..aH, fill]
    assert init_elites.shape == (2, 2, H, A)
    assert torch.equal(init_elites[:, 0], init_mean)
    assert planner.calls[0] == (None, None)  # the first call plans cold


def test_agent_reset_and_batch_changes_restart_cold_and_ids_follow_rows():
    planner = RecordingPlanner()
    agent = MPCAgent(planner, torch.device("cpu"))
    obs = np.array([[0.0], [1.0], [2.0]])
    agent.act(obs)
    agent.reset()
    agent.act(obs)
    assert planner.calls[1] == (None, None)  # reset: cold start
    agent.act(obs[[0, 2]])
    assert planner.calls[2] == (None, None)  # batch shrank without ids: cold start

    agent.reset()
    agent.act(obs, ids=np.array([0, 1, 2]))
    agent.act(obs[[0, 2]], ids=np.array([0, 2]))  # env 1 finished its episode
    init_mean = planner.calls[-1][0]
    assert init_mean.shape == (2, H, A)
    assert torch.allclose(init_mean[:, 0, 0] % 1, torch.tensor([0.0, 0.2]), atol=1e-3)  # rows 0, 2
    agent.act(obs[[1]], ids=np.array([5]))  # an env without a previous plan
    assert planner.calls[-1] == (None, None)


def test_agent_warm_start_defaults_follow_the_planner():
    cpu = torch.device("cpu")
    assert not MPCAgent(make("cem"), cpu).warm_start  # the seed's CEM stays as it was
    assert not MPCAgent(make("random"), cpu).warm_start
    assert MPCAgent(make("icem"), cpu).warm_start and MPCAgent(make("mppi"), cpu).warm_start
    assert MPCAgent(make("cem"), cpu, warm_start=True).warm_start


def test_default_cem_agent_is_identical_to_calling_the_planner():
    obs = smooth_targets(2).view(2, -1)
    agent = MPCAgent(make("cem", seed=3), torch.device("cpu"))
    planner = make("cem", seed=3)
    for _ in range(3):
        expected = planner.plan(obs).action.numpy()
        assert np.array_equal(agent.act(obs.numpy()), expected)


def test_warm_started_mppi_beats_cold_mppi_across_steps():
    """MPPI refines the plan over steps only through the warm start."""
    target = torch.full((1, H, A), 0.5)  # the same optimum at every step, so shifts keep it
    obs = target.view(1, -1).numpy()

    def mean_error(warm_start):
        agent = MPCAgent(make("mppi"), torch.device("cpu"), warm_start=warm_start)
        errors = [np.abs(agent.act(obs) - 0.5).max() for _ in range(20)]
        return float(np.mean(errors[H:]))

    assert mean_error(True) < 0.25 and mean_error(False) > 0.35


# -- the registry ---------------------------------------------------------------------


def test_make_planner_builds_every_planner_and_rejects_bad_input():
    for name, cls in [("cem", CEMPlanner), ("icem", ICEMPlanner), ("mppi", MPPIPlanner)]:
        planner = make(name)
        assert isinstance(planner, cls)
        for option, default in planner_options(name).items():
            assert getattr(planner.options, option) == default
    with pytest.raises(ConfigError, match="unknown planner"):
        make("ilqr")
    with pytest.raises(ConfigError, match="temperature"):
        make("cem", temperature=1.0)
    with pytest.raises(ConfigError, match="num_elites"):
        make("icem", num_sequences=5, num_elites=6)
    with pytest.raises(ConfigError, match="sampling"):
        make("mppi", sampling="uniform")
