"""The data-reading first layer (accel/input_linear.py) gives what nn.Linear gives: the
same outputs and gradients, its weight gradient in the faster orientation."""

import torch
from torch import nn

from dynaplan.accel.input_linear import data_linear


def test_outputs_and_gradients_are_linears():
    torch.manual_seed(0)
    layer = nn.Linear(4, 16)
    x, target = torch.randn(50, 4), torch.randn(50, 16)
    grads = []
    for forward in (data_linear, lambda lin, x: lin(x)):
        layer.zero_grad()
        out = forward(layer, x)
        ((torch.relu(out) - target) ** 2).mean().backward()
        grads.append((out.detach(), layer.weight.grad.clone(), layer.bias.grad.clone()))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)
    assert grads[0][1].is_contiguous()


def test_an_input_that_needs_a_gradient_gets_one():
    torch.manual_seed(0)
    layer = nn.Linear(4, 16)
    xs = [torch.randn(8, 4, requires_grad=True) for _ in range(2)]
    xs[1].data.copy_(xs[0].data)
    data_linear(layer, xs[0]).sum().backward()
    layer(xs[1]).sum().backward()
    assert torch.allclose(xs[0].grad, xs[1].grad)
    # batched (3-D) input and no-grad calls take nn.Linear's own path
    with torch.no_grad():
        assert torch.allclose(data_linear(layer, torch.ones(2, 3, 4)), layer(torch.ones(2, 3, 4)))
