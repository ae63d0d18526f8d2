"""Models fit a known linear system; normalizers round-trip; the fused planning network
equals the modules it was folded from; fitting uses every row and survives tiny batches."""

import copy

import numpy as np
import pytest
import torch
from objectives import objective

from dynaplan import accel
from dynaplan.accel.fused import FusedMLPs
from dynaplan.data import ReplayBuffer
from dynaplan.models import DynamicsModel, FitPart, Minibatches, Normalizer, RewardModel, fit
from dynaplan.models.fitting import adam, minibatches
from dynaplan.models.world import VALID_CHUNK

A_MAT = np.array([[0.9, 0.2], [-0.1, 0.95]], np.float32)
B_MAT = np.array([[0.0], [0.5]], np.float32)


def linear_buffer(n, seed=0):
    """s' = A s + B a, r = -(s . s) - 0.1 a^2 with s, a uniform."""
    rng = np.random.default_rng(seed)
    buf = ReplayBuffer(2, 1, capacity=8)
    s = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    nxt = s @ A_MAT.T + a @ B_MAT.T
    r = -(s**2).sum(1) - 0.1 * a[:, 0] ** 2
    for i in range(n):
        buf.add(s[i], a[i], r[i], nxt[i])
    return buf


def mse_parts(dyn, rew, lr, batch_size, input_noise=0.001):
    """The seed's fit of both MLPs: Adam on shared minibatches, the fastest FitStep."""
    batches = Minibatches(batch_size, input_noise)
    return [FitPart(name, model, adam(model.parameters(), lr), batches, accel.select_fit_step)
            for name, model in (("dynamics", dyn), ("reward", rew))]


def fitted(n=3000, epochs=60, batch=256):
    torch.manual_seed(0)
    buf = linear_buffer(n)
    dyn, rew = DynamicsModel(2, 1), RewardModel(2, 1)
    split = buf.split(0.2, np.random.default_rng(0))
    result = fit(mse_parts(dyn, rew, 3e-3, batch), buf.tensors(), split, epochs,
                 torch.Generator().manual_seed(0))
    return buf, dyn, rew, result


def test_models_fit_a_known_linear_system():
    _, dyn, rew, result = fitted()
    assert result.valid["dynamics"] < 0.02 and result.valid["reward"] < 0.02
    test = linear_buffer(500, seed=99)
    s, a = torch.as_tensor(test.obs), torch.as_tensor(test.action)
    with torch.no_grad():
        pred_next, pred_r = dyn(s, a), rew(s, a)
    assert torch.mean((pred_next - torch.as_tensor(test.next_obs)) ** 2) < 1e-3
    assert torch.mean((pred_r - torch.as_tensor(test.reward)) ** 2) < 5e-3


def test_normalizer_round_trip_and_statistics():
    x = torch.randn(1000, 3) * torch.tensor([1.0, 10.0, 0.0]) + torch.tensor([5.0, -2.0, 7.0])
    norm = Normalizer(3)
    norm.fit(x)
    z = norm.normalize(x)
    assert torch.allclose(z[:, :2].mean(0), torch.zeros(2), atol=1e-4)
    assert torch.allclose(z[:, :2].std(0, correction=0), torch.ones(2), atol=1e-4)
    assert norm.std[2] == 1.0  # a constant feature passes through unscaled
    assert torch.allclose(norm.denormalize(z), x, atol=1e-4)
    # saved with the model
    restored = Normalizer(3)
    restored.load_state_dict(norm.state_dict())
    assert torch.equal(restored.mean, norm.mean) and torch.equal(restored.std, norm.std)


def test_fused_network_equals_the_modules():
    _, dyn, rew, _ = fitted(n=600, epochs=3)
    s, a = torch.randn(64, 2), torch.rand(64, 1) * 2 - 1
    out = FusedMLPs([dyn, rew])(torch.cat([s, a], 1))
    with torch.no_grad():
        assert torch.allclose(s + out[0], dyn(s, a), atol=1e-5)
        assert torch.allclose(out[1, :, 0], rew(s, a), atol=1e-5)
    actions = torch.rand(2, 16, 5, 1) * 2 - 1
    fast = objective(dyn, rew, kernel="torch")(s[:2], actions)
    plain = objective(dyn, rew)(s[:2], actions)
    assert torch.allclose(fast, plain, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("reuse", [False, True])
def test_one_networks_epilogue_form_equals_the_batched_form(reuse):
    """The GPU form of one network (addmm with a row bias) computes what baddbmm does;
    forced on here, so the CPU checks it too."""
    _, dyn, _, _ = fitted(n=600, epochs=3)
    x = torch.cat([torch.randn(64, 2), torch.rand(64, 1) * 2 - 1], 1)
    net = FusedMLPs([dyn])
    assert not net.epilogue  # on by default only on a GPU
    batched = net(x, reuse=reuse).clone()
    net.epilogue = True
    assert torch.allclose(net(x, reuse=reuse), batched, atol=1e-6)
    known = lambda s, a, s2: -(s2**2).sum(-1)  # noqa: E731
    obs, actions = torch.randn(2, 2), torch.rand(2, 16, 5, 1) * 2 - 1
    fused = objective(dyn, known, kernel="torch")
    fused.refresh()
    fused.rollout._dyn_net.epilogue = True
    plain = objective(dyn, known)(obs, actions)
    assert torch.allclose(fused(obs, actions), plain, rtol=1e-4, atol=1e-4)


def test_minibatches_cover_every_row_and_never_hold_one():
    for n, size in [(1600, 2000), (2001, 2000), (2080, 2000), (4001, 2000), (10, 3), (2, 1),
                    (3, 2)]:
        batches = minibatches(torch.randperm(n), size)
        rows = torch.cat(batches)
        assert sorted(rows.tolist()) == list(range(n))
        assert all(b.numel() >= 2 for b in batches)
        if size >= 2 and n >= 2 * size:  # near-equal sizes, none above the batch size
            sizes = [b.numel() for b in batches]
            assert max(sizes) - min(sizes) <= 1 and max(sizes) <= size
    # the seed's defaults at iteration 3: 2,080 training rows -> 2 x 1,040, not 2,000 + 80
    assert [b.numel() for b in minibatches(torch.randperm(2080), 2000)] == [1040, 1040]


def test_seed_defaults_train_below_2500_transitions():
    """The seed skipped every batch while n_train <= batch size; dynaplan must not."""
    torch.manual_seed(0)
    buf = linear_buffer(2002)  # 1602 training rows < batch 2000; with 0.2 valid
    dyn, rew = DynamicsModel(2, 1), RewardModel(2, 1)
    before = [p.clone() for p in dyn.parameters()]
    parts = mse_parts(dyn, rew, 3e-4, 2000)
    result = fit(parts, buf.tensors(), buf.split(0.2, np.random.default_rng(0)), 2,
                 torch.Generator())
    assert any(not torch.equal(p, q) for p, q in zip(before, dyn.parameters()))
    assert np.isfinite(result.train["dynamics"])
    # 2001 training rows, batch 2000: the one-row tail must not crash BatchNorm
    buf = linear_buffer(2502)
    fit(parts, buf.tensors(), buf.split(0.2, np.random.default_rng(0)), 2, torch.Generator())


def test_chunked_validation_loss_equals_the_whole_split(monkeypatch):
    import dynaplan.models.world as world

    torch.manual_seed(0)
    model = DynamicsModel(2, 1).eval()
    x, y = torch.randn(2100, 3), torch.randn(2100, 2)
    with torch.no_grad():
        want = torch.mean((model.net(x) - y) ** 2).item()
    monkeypatch.setattr(world, "VALID_CHUNK", 500)  # 5 chunks, the last of 100 rows
    assert model.validation_loss(x, y).item() == pytest.approx(want, rel=1e-5)
    assert VALID_CHUNK >= 2


@pytest.mark.parametrize("batch_norm", [True, False])
def test_in_place_relu_trains_as_out_of_place(batch_norm):
    from torch import nn

    from dynaplan.models.mlp import MLP

    torch.manual_seed(0)
    net = MLP(4, 3, hidden=(32, 16), batch_norm=batch_norm)
    assert all(m.inplace for m in net if isinstance(m, nn.ReLU))
    plain = copy.deepcopy(net)
    for i, m in enumerate(plain):
        if isinstance(m, nn.ReLU):
            plain[i] = nn.ReLU()
    x, y = torch.randn(40, 4), torch.randn(40, 3)
    for model in (net, plain):
        ((model(x) - y) ** 2).mean().backward()
    for a, b in zip(net.parameters(), plain.parameters()):
        assert torch.equal(a.grad, b.grad)
    assert not any(isinstance(m, nn.SiLU) and m.inplace for m in MLP(4, 3, activation="silu"))
