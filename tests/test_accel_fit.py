"""Every registered fitting accelerator gives the reference's loss, gradients and BatchNorm
statistics (models.fitting.gradient_step, autograd through the plain layers) for every
model it is chosen for, and `select_fit_step` chooses it only there: a model type no
accelerator knows fits by the reference. (The kernels' own arithmetic, shape by shape:
test_input_batchnorm.py.)"""

import copy

import pytest
import torch

from dynaplan import accel
from dynaplan.accel import native_fit
from dynaplan.accel.ensemble_fit import gaussian_ensemble_step
from dynaplan.accel.fit_steps import fast_forward_step, native_mse_step, select_fit_step
from dynaplan.models import DeterministicEnsemble, DynamicsModel, GaussianEnsemble, RewardModel
from dynaplan.models.fitting import gradient_step

FIT_STEPS = {"native_mse": native_mse_step, "fast_forward": fast_forward_step,
             "ensemble_nll": gaussian_ensemble_step}
REGRESSOR_STEPS = ("native_mse", "fast_forward")
NATIVE = accel.why_not("native_mse", torch.device("cpu")) is None

MODELS = {
    "seed_dynamics": lambda: DynamicsModel(3, 1),
    "seed_reward": lambda: RewardModel(3, 1),
    "small_batchnorm": lambda: DynamicsModel(3, 1, hidden=(32, 16)),
    "three_layers": lambda: DynamicsModel(5, 2, hidden=(24, 16, 8)),
    "silu_no_batchnorm": lambda: DynamicsModel(3, 1, hidden=(32, 32), batch_norm=False,
                                               activation="silu"),
}


def test_every_fit_accelerator_is_in_this_suite():
    assert set(FIT_STEPS) == {k for k, a in accel.ACCELERATORS.items() if a.role == "fit"}


def twins(name):
    torch.manual_seed(0)
    model = MODELS[name]().train()
    with torch.no_grad():  # away from the default init: nonzero BatchNorm shifts too
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model, copy.deepcopy(model)


def batch(model, rows=200, seed=1):
    g = torch.Generator().manual_seed(seed)
    width = model.input_norm.mean.numel()
    x = torch.randn(rows, width, generator=g) * torch.linspace(0.5, 2.0, width) + 0.3
    y = torch.randn(rows, model.output_norm.mean.numel(), generator=g)
    return x, y


@pytest.mark.parametrize("kind", REGRESSOR_STEPS)
@pytest.mark.parametrize("name", MODELS)
def test_a_fit_step_gives_the_reference_gradients(kind, name):
    fast, ref = twins(name)
    x, y = batch(fast)
    if kind == "native_mse" and not native_fit.takes_mse_step(fast.net, x[:2]):
        pytest.skip("the native step runs the seed's form where the library builds")
    for _ in range(2):  # twice: the running statistics move as the reference's do
        loss = FIT_STEPS[kind](fast, x, y)
        want = gradient_step(ref, x, y)
        assert loss.grad_fn is None
        torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
        layers = list(fast.net)
        for (name_, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
            index = int(name_.split(".")[1])
            follows = layers[index + 1] if index + 1 < len(layers) else None
            if name_.endswith("bias") and isinstance(follows, torch.nn.BatchNorm1d):
                # the BatchNorm after it cancels it: zero, or rounding noise by autograd
                assert p.grad.abs().max() < 1e-5 and q.grad.abs().max() < 1e-5, name_
                continue
            scale = q.grad.abs().max().item()
            torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-4 * scale, msg=name_)
        for b, c in zip(fast.buffers(), ref.buffers(), strict=True):
            torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6)


def test_each_model_gets_the_step_that_runs_it():
    x = torch.randn(2, 4)
    seed = DynamicsModel(3, 1).train()
    assert select_fit_step(seed, x) is (native_mse_step if NATIVE else fast_forward_step)
    three = DynamicsModel(3, 1, hidden=(32, 16, 8)).train()  # not the seed's form
    assert select_fit_step(three, x) is fast_forward_step
    gaussian = GaussianEnsemble(4, 3, members=2, hidden=(8,)).train()
    assert select_fit_step(gaussian, x.expand(2, 2, 4)) is gaussian_ensemble_step
    deterministic = DeterministicEnsemble(4, 3, members=2, hidden=(8,)).train()
    assert select_fit_step(deterministic, x.expand(2, 2, 4)) is gradient_step

    class PlainNLL(GaussianEnsemble):  # its own loss: the written-out step does not know it
        def loss(self, x, y):
            mean, logvar = self(x)
            return (((mean - y) ** 2) * torch.exp(-logvar) + logvar).mean(dim=(1, 2))

    assert select_fit_step(PlainNLL(4, 3, members=2, hidden=(8,)).train(),
                           x.expand(2, 2, 4)) is gradient_step

    class HuberDynamics(DynamicsModel):  # its own loss: the accelerators do not know it
        def loss(self, x, y):
            return torch.nn.functional.huber_loss(self.net(x), y)

    assert select_fit_step(HuberDynamics(3, 1).train(), x) is gradient_step


@pytest.mark.parametrize("activation", ["relu", "silu"])
@pytest.mark.parametrize("outputs", [3, 60])  # 60: the bound penalty's capped weight
def test_the_ensemble_step_gives_the_reference_loss_and_gradients(activation, outputs):
    torch.manual_seed(0)
    fast = GaussianEnsemble(5, outputs, members=3, hidden=(16, 12), activation=activation)
    with torch.no_grad():  # bounds where both softplus gates are in play
        fast.max_logvar.uniform_(-1.0, 1.0)
        fast.min_logvar.uniform_(-3.0, -1.0)
    ref = copy.deepcopy(fast)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 40, 5, generator=g)
    y = torch.randn(3, 40, outputs, generator=g) * 2.0
    loss = gaussian_ensemble_step(fast, x, y)
    want = gradient_step(ref, x, y)
    assert loss.grad_fn is None
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        scale = q.grad.abs().max().item()
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-5 * scale, msg=name)
