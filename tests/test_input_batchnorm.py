"""Fitting a BatchNorm ReLU network (accel/fit_steps.train_forward) runs its first block
(Linear, BatchNorm, ReLU) in one pass from the input's statistics (`input_batchnorm`), and
where the native library builds, the block and the Linear after it in native code
(`native_fit`). Both give what the layers give one by one: outputs, every gradient,
BatchNorm's running statistics, whole fits."""

import numpy as np
import pytest
import torch
from test_models import mse_parts
from torch import nn

from dynaplan.accel import input_batchnorm, native_build, native_fit
from dynaplan.accel.fit_steps import train_forward
from dynaplan.data.buffer import ReplayBuffer
from dynaplan.models import DynamicsModel, RewardModel, fit
from dynaplan.models.mlp import MLP, SeedMLP

needs_kernel = pytest.mark.skipif(native_build.unavailable() is not None,
                                  reason=str(native_build.unavailable()))

SHAPES = [  # hidden widths, rows, inputs, outputs
    ((512, 256), 2000, 4, 3),  # the seed's dynamics network and batch (Pendulum)
    ((512, 256), 2000, 4, 1),  # the seed's reward network
    ((200, 37), 37, 4, 3),  # widths off the 16-column panels, a partial 6-row block
    ((37, 21), 29, 4, 2),  # widths off the 8-column vectors too
    ((64, 16, 8), 13, 4, 3),  # a third hidden layer: the first block and Linear only
    ((40, 24), 50, 23, 17),  # HalfCheetah's 17 + 6 inputs and 17 outputs
    ((24, 40), 7, 4, 2),  # a batch of a few rows
]


@pytest.fixture(params=["torch block", "native"])
def path(request, monkeypatch):
    """Which path the network takes: the first block in torch ops, or the native kernels
    (the whole network where it has the seed's form, else the first block and Linear)."""
    if request.param == "native" and native_build.unavailable() is not None:
        pytest.skip(str(native_build.unavailable()))
    monkeypatch.setattr(native_fit, "ENABLED", request.param == "native")
    return request.param


def twins(hidden, in_dim=4, out_dim=3, seed=0):
    torch.manual_seed(seed)
    a, b = MLP(in_dim, out_dim, hidden=hidden), MLP(in_dim, out_dim, hidden=hidden)
    for p in a.parameters():  # away from the default init: nonzero BatchNorm shifts too
        p.data.normal_(0, 0.3)
    b.load_state_dict(a.state_dict())
    return a.train(), b.train()


def data(n, in_dim=4, seed=1, out_dim=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, in_dim, generator=g) * torch.linspace(0.5, 3.0, in_dim) + 0.7
    return x, torch.randn(n, out_dim, generator=g)


def layer_by_layer(net, x):
    return nn.Sequential.forward(net, x)


@pytest.mark.parametrize("hidden, n, inputs, outputs", SHAPES)
def test_outputs_gradients_and_running_stats_equal_layer_by_layer(path, hidden, n, inputs,
                                                                   outputs):
    fast, ref = twins(hidden, in_dim=inputs, out_dim=outputs)
    x, t = data(n, in_dim=inputs, out_dim=outputs)
    assert input_batchnorm.applies(fast, x)
    assert native_fit.applies(fast, x) == (path == "native")
    assert native_fit.is_seed_network(fast) == (len(hidden) == 2)
    out, out_ref = train_forward(fast, x), layer_by_layer(ref, x)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    ((out - t) ** 2).mean().backward()
    ((out_ref - t) ** 2).mean().backward()
    modules = list(fast)
    for (name, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        index = int(name.split(".")[0])
        if (name.endswith("bias") and index + 1 < len(modules)
                and isinstance(modules[index + 1], nn.BatchNorm1d)):  # cancelled by it
            if name == "0.bias":
                assert torch.equal(p.grad, torch.zeros_like(p.grad))
            assert q.grad.abs().max() < 1e-5  # torch's own is rounding noise
            continue
        scale = q.grad.abs().max()
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-4 * scale, msg=name)
    for (name, b), c in zip(fast.named_buffers(), ref.buffers(), strict=True):
        torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6, msg=name)


def test_the_first_bias_does_not_change_the_output(path):
    net, _ = twins((32, 16))
    x, _ = data(50)
    before = train_forward(net, x).detach()
    with torch.no_grad():
        net[0].bias.add_(5.0)
    torch.testing.assert_close(train_forward(net, x).detach(), before, rtol=1e-5, atol=1e-5)


def test_float64_gradients_match_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.float64)
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    gamma = torch.rand(5, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(5, dtype=torch.float64, requires_grad=True)
    fn = lambda *args: input_batchnorm._InputBatchNormReLU.apply(x, *args, 1e-5)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (w, b, gamma, beta))


@pytest.mark.parametrize("change", ["eval", "no_grad", "silu", "no_batchnorm", "x_grad", "one_row"])
def test_the_layers_run_one_by_one_where_the_block_does_not_apply(change):
    net = MLP(4, 3, hidden=(16, 8), activation="silu" if change == "silu" else "relu",
              batch_norm=change != "no_batchnorm")
    x, _ = data(1 if change == "one_row" else 10)
    if change == "eval":
        net.eval()
    if change == "x_grad":
        x.requires_grad_(True)
    with torch.set_grad_enabled(change != "no_grad"):
        assert not input_batchnorm.applies(net, x)
        assert not native_fit.applies(net, x)
        if change != "one_row":  # BatchNorm refuses one training row either way
            torch.testing.assert_close(train_forward(net, x), layer_by_layer(net, x))


def test_the_native_path_steps_aside_without_the_library(monkeypatch):
    monkeypatch.setattr(native_build, "unavailable", lambda: "no compiler here")
    net, _ = twins((32, 16))
    x, _ = data(20)
    assert input_batchnorm.applies(net, x) and not native_fit.applies(net, x)
    assert not native_fit.applies(net.double(), x.double())


@needs_kernel
def test_a_non_contiguous_weight_takes_the_torch_block():
    net, ref = twins((32, 16))
    x, _ = data(40)
    with torch.no_grad():
        net[3].weight = nn.Parameter(net[3].weight.t().contiguous().t())  # same values
    assert not net[3].weight.is_contiguous()
    assert input_batchnorm.applies(net, x) and not native_fit.applies(net, x)
    torch.testing.assert_close(train_forward(net, x), layer_by_layer(ref, x), rtol=1e-5,
                               atol=1e-5)


@needs_kernel
def test_wide_inputs_take_the_torch_block():
    wide = native_fit.MAX_INPUTS + 1
    net, ref = twins((32, 16), in_dim=wide)
    x, _ = data(40, in_dim=wide)
    assert input_batchnorm.applies(net, x) and not native_fit.applies(net, x)
    torch.testing.assert_close(train_forward(net, x), layer_by_layer(ref, x), rtol=1e-5,
                               atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("hidden", [(200, 37), (64, 16, 8)])  # whole network; first layers
def test_native_results_do_not_depend_on_timing_and_threads_agree(hidden):
    net, _ = twins(hidden)
    x, t = data(301)
    grads = []
    for threads in (1, 2, 3, 2):
        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            net.zero_grad()
            ((train_forward(net, x) - t) ** 2).mean().backward()
        finally:
            torch.set_num_threads(prev)
        grads.append([p.grad.clone() for p in net.parameters()])
    for g1, g2 in zip(grads[1], grads[3], strict=True):  # two threads twice: bit-identical
        assert torch.equal(g1, g2)
    for other in (grads[0], grads[2]):
        for g1, g2 in zip(grads[1], other, strict=True):
            # (atol 1e-6: the bias before the second BatchNorm has a rounding-noise gradient)
            torch.testing.assert_close(g1, g2, rtol=1e-4,
                                       atol=max(1e-4 * g2.abs().max().item(), 1e-6))


def _fit(epochs, mode, monkeypatch, seed=0):
    with monkeypatch.context() as m:
        m.setattr(native_fit, "ENABLED", mode == "native")
        if mode == "layer by layer":
            m.setattr(input_batchnorm, "applies", lambda *a: False)
        rng = np.random.default_rng(0)
        buf = ReplayBuffer(3, 1)
        obs = rng.normal(size=(600, 3)).astype(np.float32)
        act = rng.uniform(-2, 2, size=(600, 1)).astype(np.float32)
        nxt = obs + 0.1 * np.tanh(obs + act)
        for row in range(600):
            buf.add(obs[row], act[row], -float(np.sum(obs[row] ** 2)), nxt[row])
        torch.manual_seed(seed)
        dyn, rew = DynamicsModel(3, 1), RewardModel(3, 1)
        split = buf.split(0.2, np.random.default_rng(0))
        result = fit(mse_parts(dyn, rew, 1e-3, 128, 0.01), buf.tensors(), split, epochs,
                     torch.Generator().manual_seed(0))
        with torch.no_grad():
            pred = dyn(torch.as_tensor(obs[:100]), torch.as_tensor(act[:100]))
        return result, pred


def test_a_whole_fit_agrees_with_the_layer_by_layer_fit(path, monkeypatch):
    fast, pred = _fit(3, path, monkeypatch)
    slow, pred_ref = _fit(3, "layer by layer", monkeypatch)
    assert fast.valid["dynamics"] == pytest.approx(slow.valid["dynamics"], rel=2e-2)
    assert fast.valid["reward"] == pytest.approx(slow.valid["reward"], rel=2e-2)
    torch.testing.assert_close(pred, pred_ref, rtol=0, atol=2e-3)
    again, pred_again = _fit(3, path, monkeypatch)
    assert again.valid["dynamics"] == fast.valid["dynamics"] and torch.equal(pred, pred_again)


def test_the_seed_network_takes_the_fast_path_in_training_only(path):
    net = SeedMLP(4, 3)
    x, _ = data(64)
    assert native_fit.applies(net, x) == (path == "native")
    net.eval()
    assert not input_batchnorm.applies(net, x)


@needs_kernel
@pytest.mark.parametrize("hidden, n, inputs, outputs", [s for s in SHAPES if len(s[0]) == 2])
def test_the_mse_step_gives_what_autograd_gives_through_the_same_kernels(hidden, n, inputs,
                                                                         outputs):
    fast, ref = twins(hidden, in_dim=inputs, out_dim=outputs)
    x, t = data(n, in_dim=inputs, out_dim=outputs)
    assert native_fit.takes_mse_step(fast, x)
    for p in fast.parameters():  # replaced, as after zero_grad(set_to_none=True)
        p.grad = torch.full_like(p, 7.0)
    loss = native_fit.mse_step(fast, x, t)
    loss_ref = torch.mean((train_forward(ref, x) - t) ** 2)
    loss_ref.backward()
    assert loss.grad_fn is None and loss.dtype == torch.float32
    assert loss.item() == pytest.approx(loss_ref.item(), rel=1e-6)  # summed in double
    for (name, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name
    for (name, b), c in zip(fast.named_buffers(), ref.buffers(), strict=True):
        assert torch.equal(b, c), name


@needs_kernel
@pytest.mark.parametrize("change", ["no_grad", "frozen", "third_layer", "eval", "disabled"])
def test_the_mse_step_is_refused_where_autograd_is_needed(change, monkeypatch):
    net, _ = twins((64, 16, 8) if change == "third_layer" else (32, 16))
    x, _ = data(20)
    if change == "frozen":
        net[6].weight.requires_grad_(False)
    if change == "eval":
        net.eval()
    if change == "disabled":
        monkeypatch.setattr(native_fit, "ENABLED", False)
    with torch.set_grad_enabled(change != "no_grad"):
        assert not native_fit.takes_mse_step(net, x)
    assert not native_fit.takes_mse_step(nn.Identity(), x)


@needs_kernel
def test_the_mse_step_refuses_a_target_of_another_shape():
    net, _ = twins((32, 16))
    x, t = data(20)
    with pytest.raises(ValueError, match="target of shape"):
        native_fit.mse_step(net, x, t[:, :2])


@needs_kernel
@pytest.mark.parametrize("momentum", [0.1, 0.7])  # both of lerp's forms
def test_native_running_statistics_follow_batchnorm_for_any_momentum(momentum):
    fast, ref = twins((32, 16))
    for net in (fast, ref):
        net[1].momentum = net[4].momentum = momentum
    x, t = data(50)
    for _ in range(3):
        native_fit.mse_step(fast, x, t)
        layer_by_layer(ref, x)
    for (name, b), c in zip(fast.named_buffers(), ref.buffers(), strict=True):
        torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6, msg=name)
