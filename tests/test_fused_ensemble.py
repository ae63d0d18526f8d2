"""The ensemble's planning form (models/fused_ensemble.py) plans exactly as the module:
every propagation, sampled or not, with dropped members, fitted normalizers, both
activations, and rows that do or do not divide into the CPU split."""

import pytest
import torch

from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.fused_ensemble import MAX_SPLIT, FusedEnsemble, balanced_split
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.planners import ModelObjective


def random_ensemble(activation: str, keep: int) -> GaussianEnsemble:
    torch.manual_seed(0)
    ens = GaussianEnsemble(3 + 2, 3, members=5, hidden=(16, 16), activation=activation)
    ens.input_norm.fit(torch.randn(50, 5) * torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0]) + 0.3)
    ens.output_norm.fit(torch.randn(50, 3) * torch.tensor([0.1, 2.0, 0.7]) - 0.2)
    with torch.no_grad():
        ens.max_logvar.fill_(0.3)
        ens.min_logvar.fill_(-3.0)
    ens.keep_best(torch.tensor([0.5, 0.1, 0.9, 0.2, 0.3]), keep)
    return ens.eval()


def reward(state, action, next_state):
    return -(next_state ** 2).sum(-1) - 0.1 * (action ** 2).sum(-1)


@pytest.mark.parametrize("propagation", ["tsinf", "ts1", "expectation"])
@pytest.mark.parametrize("activation,keep", [("silu", 5), ("relu", 4), ("silu", 3)])
@pytest.mark.parametrize("sequences", [6, 7])  # 7 rows a member do not split in halves
def test_fused_ensemble_plans_as_the_module(propagation, activation, keep, sequences):
    ens = random_ensemble(activation, keep)
    particles = 1 if propagation == "expectation" else keep
    obs = torch.randn(1, 3)
    actions = torch.rand(1, sequences, 6, 2) * 2 - 1
    returns = []
    for fused in (True, False):
        dyn = EnsembleDynamics(ens, propagation, particles,
                               generator=torch.Generator().manual_seed(3))
        returns.append(ModelObjective(dyn, reward, fused=fused)(obs, actions))
    assert torch.allclose(returns[0], returns[1], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_split_rows_give_the_same_members_outputs(split):
    ens = random_ensemble("silu", 5)
    x = torch.randn(5, 12, 5)
    mean, std = FusedEnsemble(ens, split=split)(x)
    ref_mean, logvar = ens(ens.input_norm.normalize(x))
    assert torch.allclose(mean, ens.output_norm.denormalize(ref_mean), atol=1e-5)
    assert torch.allclose(std, torch.exp(0.5 * logvar) * ens.output_norm.std, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 16])
def test_balanced_split_makes_the_batch_a_multiple_of_the_threads(threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for members in range(1, 8):
            parts = balanced_split(members, torch.device("cpu"))
            balanced = (members * parts) % threads == 0
            assert (balanced and parts <= MAX_SPLIT) or parts == 1, (members, parts)
        assert balanced_split(5, torch.device("cpu")) == {1: 1, 2: 2, 3: 3, 4: 4, 16: 1}[threads]
    finally:
        torch.set_num_threads(before)
    assert balanced_split(5, torch.device("meta")) == 1  # not a CPU: no split
