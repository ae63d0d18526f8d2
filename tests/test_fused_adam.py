"""The fused Adam optimizer of accel/: torch's fused Adam's updates to the bit, the
reference Adam's to rounding, torch.optim's checkpoint format both ways, and no import of
torch's compiler stack."""

import io
import subprocess
import sys

import pytest
import torch

from dynaplan import accel
from dynaplan.accel.fused_adam import FusedAdam, fused_adam_unavailable
from dynaplan.models import GaussianEnsemble

pytestmark = pytest.mark.skipif(fused_adam_unavailable(torch.device("cpu")) is not None,
                                reason="this torch has no fused CPU Adam")


def _model(seed=0):
    torch.manual_seed(seed)
    return GaussianEnsemble(3, 2, members=2, hidden=(8, 8))


def _train(model, opt, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(2, 16, 3, generator=g), torch.randn(2, 16, 2, generator=g)
        for p in model.parameters():
            p.grad = None
        model.loss(x, y).sum().backward()
        opt.step()


def _saved(state):
    """Through bytes, as a checkpoint holds it (a state_dict shares its tensors)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer)


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_its_steps_are_torch_fused_adams_to_the_bit_and_the_references_to_rounding():
    a, b, c = _model(), _model(), _model()
    _train(a, FusedAdam(a.parameters(), 3e-3, weight_decay=5e-5), 30)
    _train(b, torch.optim.Adam(b.parameters(), lr=3e-3, weight_decay=5e-5, fused=True), 30)
    _train(c, torch.optim.Adam(c.parameters(), lr=3e-3, weight_decay=5e-5), 30)
    assert _same(a, b)
    for p, q in zip(a.parameters(), c.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)
    assert not _same(a, _model())  # it moved


def test_a_checkpoint_moves_between_it_and_torch_adam_both_ways():
    a, b = _model(), _model()
    opt_a = FusedAdam(a.parameters(), 3e-3, weight_decay=5e-5)
    _train(a, opt_a, 10)
    # resume in torch.optim.Adam(fused=True) and in FusedAdam: the same next steps
    b.load_state_dict(a.state_dict())
    opt_b = torch.optim.Adam(b.parameters(), lr=1.0, fused=True)
    opt_b.load_state_dict(_saved(opt_a.state_dict()))
    assert opt_b.param_groups[0]["lr"] == 3e-3
    c = _model(5)
    c.load_state_dict(a.state_dict())
    opt_c = FusedAdam(c.parameters(), 1.0)
    opt_c.load_state_dict(_saved(opt_b.state_dict()))
    _train(a, opt_a, 5, seed=2)
    _train(b, opt_b, 5, seed=2)
    _train(c, opt_c, 5, seed=2)
    assert _same(a, b) and _same(a, c)


def test_a_state_of_other_parameters_is_refused():
    a = _model()
    opt = FusedAdam(a.parameters(), 1e-3)
    _train(a, opt, 1)
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError):
        FusedAdam(other.parameters(), 1e-3).load_state_dict(opt.state_dict())


def test_runs_get_it_on_the_cpu():
    model = _model()
    assert isinstance(accel.select_optimizer(model.parameters(), 1e-3), FusedAdam)


def test_making_and_stepping_it_imports_no_compiler():
    code = ("import sys, torch\n"
            "from dynaplan.accel.fused_adam import FusedAdam\n"
            "p = torch.nn.Parameter(torch.ones(3)); o = FusedAdam([p], 1e-3)\n"
            "p.grad = torch.ones(3); o.step(); o.load_state_dict(o.state_dict())\n"
            "assert p[0] < 1\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
