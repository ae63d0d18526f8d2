"""The ensemble's planning form (accel/fused_ensemble.py) gives each member's outputs as the
module does, with its rows cut into the CPU split or not (it plans as the module: every
propagation, in test_accel_rollouts.py)."""

import pytest
import torch
from objectives import random_ensemble

from dynaplan.accel.fused_ensemble import MAX_SPLIT, FusedEnsemble, balanced_split


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
