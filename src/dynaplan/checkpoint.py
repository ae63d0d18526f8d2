"""Model and buffer checkpoints, written atomically and loaded without unpickling code."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from dynaplan.data import ReplayBuffer
from dynaplan.errors import ConfigError
from dynaplan.models import DynamicsModel, RewardModel

MODELS_FILE = "models.pt"
BUFFER_FILE = "buffer.npz"


def atomic_write(path: Path, write) -> None:
    """Call `write(fileobj)` on a temp file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(
    folder: Path, dynamics: DynamicsModel, reward: RewardModel, buffer: ReplayBuffer, iteration: int
) -> None:
    state = {
        "dynamics": dynamics.state_dict(),
        "reward": reward.state_dict(),
        "iteration": torch.tensor(iteration),
    }
    atomic_write(folder / MODELS_FILE, lambda fh: torch.save(state, fh))
    atomic_write(folder / BUFFER_FILE, lambda fh: buffer.save(fh))


def load_models(folder: Path, dynamics: DynamicsModel, reward: RewardModel) -> int:
    """Load weights and normalizers in place; return the iteration they were saved at."""
    path = folder / MODELS_FILE
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        dynamics.load_state_dict(state["dynamics"])
        reward.load_state_dict(state["reward"])
        return int(state["iteration"])
    except Exception as exc:
        raise ConfigError(f"checkpoint {path} is unreadable: {str(exc).splitlines()[0]}") from None
