"""Probabilistic ensemble: equals E separate MLPs, propagates particles through the right
members, fits a noisy linear system; the objective averages particles and stops rewards
after a predicted termination."""

import numpy as np
import pytest
import torch
from objectives import objective
from torch import nn

from dynaplan.data import ReplayBuffer
from dynaplan.models import Bootstrap, EnsembleDynamics, FitPart, GaussianEnsemble, fit
from dynaplan.models.ensemble import bound_penalty_weight
from dynaplan.objective import ModelObjective


def test_ensemble_equals_separate_mlps():
    torch.manual_seed(0)
    e, i, d, hidden = 4, 5, 3, (16, 8)
    ens = GaussianEnsemble(i, d, members=e, hidden=hidden, activation="silu")
    x = torch.randn(e, 7, i)
    mean, logvar = ens(x)
    for k in range(e):
        mlp = nn.Sequential(nn.Linear(i, 16), nn.SiLU(), nn.Linear(16, 8), nn.SiLU(),
                            nn.Linear(8, 2 * d))
        layers = [*ens.hidden_layers, ens.head]
        for lin, ens_layer in zip([m for m in mlp if isinstance(m, nn.Linear)], layers):
            lin.weight.data = ens_layer.weight[k].t().clone()
            lin.bias.data = ens_layer.bias[k, 0].clone()
        out = mlp(x[k])
        assert torch.allclose(mean[k], out[:, :d], atol=1e-6)
        raw = out[:, d:]
        lv = ens.max_logvar - nn.functional.softplus(ens.max_logvar - raw)
        lv = ens.min_logvar + nn.functional.softplus(lv - ens.min_logvar)
        assert torch.allclose(logvar[k], lv, atol=1e-6)
    assert (logvar <= ens.max_logvar + 1e-6).all() and (logvar >= ens.min_logvar - 1e-6).all()


def toy_ensemble(members=4):
    """Member e predicts the state change +e in every dimension (identity normalizers)."""
    ens = GaussianEnsemble(2 + 1, 2, members=members, hidden=(4,))
    with torch.no_grad():
        for layer in [*ens.hidden_layers, ens.head]:
            layer.weight.zero_()
            layer.bias.zero_()
        ens.head.bias[:, 0, :2] = torch.arange(members, dtype=torch.float32)[:, None]
    ens.eval()
    return ens


def test_tsinf_keeps_each_particle_on_its_member():
    ens = toy_ensemble(4)
    dyn = EnsembleDynamics(ens, "tsinf", particles=8, sample=False)
    state = torch.zeros(3 * 8, 2)  # 3 sequences x 8 particles, particle index fastest
    for _ in range(5):
        state = dyn(state, torch.zeros(24, 1))
    expected = 5.0 * (torch.arange(24) % 8 % 4).float()
    assert torch.equal(state[:, 0], expected)


def test_ts1_redraws_members_every_step_balanced():
    ens = toy_ensemble(4)
    dyn = EnsembleDynamics(ens, "ts1", particles=8, sample=False,
                           generator=torch.Generator().manual_seed(0))
    state, steps = torch.zeros(32, 2), []
    for _ in range(6):
        nxt = dyn(state, torch.zeros(32, 1))
        inc = (nxt - state)[:, 0]
        # every member serves an equal share of rows at every step
        assert torch.equal(torch.bincount(inc.long(), minlength=4), torch.full((4,), 8))
        steps.append(inc)
        state = nxt
    incs = torch.stack(steps)  # [steps, rows]
    assert (incs != incs[0]).any(dim=0).float().mean() > 0.8  # particles change member


def test_expectation_averages_the_members():
    ens = toy_ensemble(4)
    dyn = EnsembleDynamics(ens, "expectation", particles=1)
    out = dyn(torch.zeros(5, 2), torch.zeros(5, 1))
    assert torch.allclose(out, torch.full((5, 2), 1.5))


def test_kept_members_restrict_propagation():
    ens = toy_ensemble(4)
    ens.keep(torch.tensor([0.3, 0.1, 0.4, 0.2]), 2)  # members 1 and 3
    assert ens.elites.tolist() == [1, 3]
    dyn = EnsembleDynamics(ens, "tsinf", particles=2, sample=False)
    out = dyn(torch.zeros(4, 2), torch.zeros(4, 1))
    assert out[:, 0].tolist() == [1.0, 3.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="multiple"):
        EnsembleDynamics(ens, "ts1", particles=3)


def test_ensemble_fits_a_noisy_linear_system():
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    y = (x @ np.array([[0.5, -0.2], [0.1, 0.3], [0.0, 0.4]], np.float32)
         + 0.05 * rng.standard_normal((n, 2)).astype(np.float32))
    buf = ReplayBuffer(2, 1, capacity=n)  # obs = x[:, :2], action = x[:, 2:], delta = y
    for row, delta in zip(x, y):
        buf.add(row[:2], row[2:], 0.0, row[:2] + delta)
    torch.manual_seed(0)
    ens = GaussianEnsemble(3, 2, members=3, hidden=(64, 64), keep=2)
    part = FitPart("dynamics", ens, torch.optim.Adam(ens.parameters(), lr=3e-3),
                   Bootstrap(3, 128))
    split = buf.split(0.2, rng)
    result = fit([part], buf.tensors(), split, 40, torch.Generator().manual_seed(0))
    data = buf.tensors()
    xs, ys = ens.examples(data)
    valid = torch.as_tensor(split.valid)
    per_member = ens.validation_loss(ens.input_norm.normalize(xs[valid]),
                                     ens.output_norm.normalize(ys[valid]))
    # noise variance in normalized units is about 0.05^2 / var(y) ~ 0.03
    assert per_member.max() < 0.1
    kept = ens.elites.tolist()
    assert len(kept) == 2 and set(kept) == set(per_member.argsort()[:2].tolist())
    assert result.valid["dynamics"] == pytest.approx(per_member[kept].mean().item())
    with torch.no_grad():
        _, logvar = ens(ens.input_norm.normalize(torch.as_tensor(x[:400])).expand(3, -1, -1))
    assert logvar.exp().mean() < 0.2  # learned a small noise variance


@pytest.mark.parametrize("outputs", [3, 105, 400])
def test_a_bound_above_the_data_is_pulled_back_at_any_width(outputs):
    """min_logvar a little above the model's error (variance 1.2 x its mse, the raw
    log-variance far below, so the bound decides it): the loss must pull it down, at any
    number of outputs. With the paper's flat 0.01 and over 100 outputs the penalty won at
    any height and the bound ran away (Ant-v5: the model's spread grew without limit)."""
    torch.manual_seed(0)
    ens = GaussianEnsemble(4, outputs, members=2, hidden=(16,))
    with torch.no_grad():  # mean 0, raw log-variance -20
        ens.head.weight.zero_()
        ens.head.bias.zero_()
        ens.head.bias[..., outputs:] = -20.0
    x, y = torch.randn(2, 256, 4), torch.randn(2, 256, outputs)
    with torch.no_grad():
        ens.min_logvar.copy_(torch.log(1.2 * (y**2).mean(dim=(0, 1))))
    ens.loss(x, y).sum().backward()
    assert (ens.min_logvar.grad > 0).all()  # gradient descent lowers it
    assert bound_penalty_weight(outputs) == (0.01 if outputs <= 5 else 0.05 / outputs)


def test_objective_averages_particles_and_stops_after_termination():
    ens = toy_ensemble(4)
    dyn = EnsembleDynamics(ens, "tsinf", particles=4, sample=False)

    def reward(s, a, s2):
        return s2[:, 0]

    returns = ModelObjective(dyn, reward)(torch.zeros(1, 2), torch.zeros(1, 2, 3, 1))
    # particle p gains p per step: rewards p, 2p, 3p -> 6p, averaged over p = 0..3 -> 9
    assert torch.allclose(returns, torch.full((1, 2), 9.0))

    def terminate(s, a, s2):
        return s2[:, 0] >= 2.0  # member 2 after one step, member 1 after two

    returns = ModelObjective(dyn, reward, terminate)(torch.zeros(1, 2), torch.zeros(1, 1, 3, 1))
    # p0: 0; p1: 1 + 2 (terminal step counts) = 3; p2: 2; p3: 3 -> mean 2
    assert torch.allclose(returns, torch.full((1, 1), 2.0))


def test_objective_version_counts_refreshes_not_calls():
    # a captured CUDA graph is dropped when the version changes, so planning calls
    # (which build the fused networks lazily once) must not change it
    ens = GaussianEnsemble(4, 3, members=2, hidden=(8,))
    dyn = EnsembleDynamics(ens, "tsinf", particles=2, generator=torch.Generator().manual_seed(0))
    fused = objective(dyn, lambda s, a, s2: -(s2**2).sum(-1), kernel="torch")
    obs, actions = torch.zeros(1, 3), torch.zeros(1, 4, 5, 1)
    fused(obs, actions)
    fused(obs, actions)
    assert fused.version == 0
    fused.refresh()
    assert fused.version == 1
    assert fused.generators == (dyn.generator,)
