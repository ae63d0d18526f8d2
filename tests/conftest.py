import os

import pytest
import torch

if not torch.cuda.is_available():
    # the Triton rollout kernel's tests run it in Triton's interpreter on CPU tensors; Triton
    # reads the switch when it is imported (dynaplan imports it only when a kernel is built)
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True, scope="session")
def _fixed_threads():
    # one thread count for the whole session (session scope: set before any module-scoped
    # fixture trains a run), so results compared between tests stay bit-identical
    torch.set_num_threads(1)
    yield


TINY = [
    "--iterations", "2",
    "--random-trajectories", "1",
    "--steps-per-iteration", "1",
    "--horizon", "3",
    "--num-sequences", "8",
    "--cem-iterations", "2",
    "--num-elites", "2",
    "--epochs", "2",
    "--batch-size", "64",
    "--video-every", "0",
    "--device", "cpu",
    "--quiet",
]
TINY_NO_DEVICE = [a for a in TINY if a not in ("--device", "cpu")]
"""TINY without its `--device cpu`, for runs that name their own device."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A complete 4-iteration run (resume_helpers.ARGS), one per test module."""
    from resume_helpers import ARGS

    from dynaplan.app.cli import main

    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", *ARGS, "--out", str(out)]) == 0
    return out
