"""The data-reading first layer (models/input_linear.py) trains exactly as nn.Linear."""

import copy

import torch
from torch import nn

from dynaplan.models.input_linear import InputLinear
from dynaplan.models.mlp import SeedMLP


def twin_layers(seed: int = 0) -> tuple[InputLinear, nn.Linear]:
    torch.manual_seed(seed)
    ours = InputLinear(4, 16)
    torch.manual_seed(seed)
    theirs = nn.Linear(4, 16)  # the same init draws
    return ours, theirs


def test_same_init_outputs_and_gradients_as_linear():
    ours, theirs = twin_layers()
    assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias)
    x, target = torch.randn(50, 4), torch.randn(50, 16)
    grads = []
    for layer in (ours, theirs):
        out = layer(x)
        ((torch.relu(out) - target) ** 2).mean().backward()
        grads.append((out.detach(), layer.weight.grad, layer.bias.grad))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)
    assert ours.weight.grad.is_contiguous()


def test_an_input_that_needs_a_gradient_gets_one():
    ours, theirs = twin_layers()
    xs = [torch.randn(8, 4, requires_grad=True) for _ in range(2)]
    xs[1].data.copy_(xs[0].data)
    for layer, x in zip((ours, theirs), xs):
        layer(x).sum().backward()
    assert torch.allclose(xs[0].grad, xs[1].grad)
    # batched (3-D) input and no-grad calls take nn.Linear's own path
    with torch.no_grad():
        assert torch.allclose(ours(torch.ones(2, 3, 4)), theirs(torch.ones(2, 3, 4)))


def test_seed_network_keeps_its_state_dict_and_fits_the_same():
    torch.manual_seed(0)
    net = SeedMLP(4, 3)
    assert isinstance(net[0], InputLinear)
    assert not any(isinstance(m, InputLinear) for m in list(net)[1:])
    plain = copy.deepcopy(net)
    plain[0] = nn.Linear(4, 512)
    plain.load_state_dict(net.state_dict())  # the same keys and shapes
    x, y = torch.randn(64, 4), torch.randn(64, 3)
    for model in (net, plain):
        # plain SGD: Adam's normalized step would blow up rounding-level differences of
        # near-zero gradients to differences of the order of its learning rate
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()
    for a, b in zip(net.state_dict().values(), plain.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
