"""Replay buffer of transitions (obs, action, reward, next_obs, terminated, truncated).

Storage is preallocated numpy arrays that double when full, so appending is amortised
O(1) and never copies the whole data set per step. `split` gives a shuffled
train/validation partition from a caller's generator; `save`/`load` use `.npz` without
pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from dynaplan.errors import ConfigError
from dynaplan.types import Transitions

_FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


@dataclass(frozen=True)
class Split:
    """Row indices of the training and validation parts of a buffer."""

    train: np.ndarray
    valid: np.ndarray


class ReplayBuffer:
    """Growing store of transitions; arrays are views of the filled part."""

    def __init__(self, obs_dim: int, action_dim: int, capacity: int = 1024) -> None:
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self._size = 0
        capacity = max(1, capacity)
        self._data = {
            "obs": np.zeros((capacity, obs_dim), np.float32),
            "action": np.zeros((capacity, action_dim), np.float32),
            "reward": np.zeros((capacity,), np.float32),
            "next_obs": np.zeros((capacity, obs_dim), np.float32),
            "terminated": np.zeros((capacity,), bool),
            "truncated": np.zeros((capacity,), bool),
        }

    def __len__(self) -> int:
        return self._size

    def _grow(self) -> None:
        for key, arr in self._data.items():
            bigger = np.zeros((2 * arr.shape[0],) + arr.shape[1:], arr.dtype)
            bigger[: self._size] = arr[: self._size]
            self._data[key] = bigger

    def add(self, obs, action, reward, next_obs, terminated=False, truncated=False) -> None:
        """Append one transition."""
        if self._size == self._data["obs"].shape[0]:
            self._grow()
        i = self._size
        self._data["obs"][i] = obs
        self._data["action"][i] = action
        self._data["reward"][i] = reward
        self._data["next_obs"][i] = next_obs
        self._data["terminated"][i] = terminated
        self._data["truncated"][i] = truncated
        self._size += 1

    def truncate(self, size: int) -> None:
        """Forget every transition from row `size` on (e.g. an episode the environment
        broke off); 0 <= size <= len(self)."""
        if not 0 <= size <= self._size:
            raise ValueError(f"cannot truncate a buffer of {self._size} rows to {size}")
        self._size = size

    def __getattr__(self, name: str) -> np.ndarray:
        if name in _FIELDS:
            return self.__dict__["_data"][name][: self.__dict__["_size"]]
        raise AttributeError(name)

    def split(self, valid_fraction: float, rng: np.random.Generator) -> Split:
        """Shuffle all rows with `rng` and hold out `valid_fraction` of them (at least one
        row each side when the buffer has two or more)."""
        n = self._size
        perm = rng.permutation(n)
        n_valid = int(round(n * valid_fraction))
        if n >= 2:
            n_valid = min(max(n_valid, 1), n - 1)
        return Split(train=perm[n_valid:], valid=perm[:n_valid])

    def tensors(self, device: torch.device | str = "cpu") -> Transitions:
        """Every transition as float32 tensors (terminated as bool) on `device`."""
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32,  # noqa: E731
                                         device=device)
        return Transitions(obs=as_t(self.obs), action=as_t(self.action),
                           reward=as_t(self.reward), next_obs=as_t(self.next_obs),
                           terminated=torch.as_tensor(self.terminated, device=device))

    def save(self, file: str | Path | BinaryIO) -> None:
        """Write all fields as one `.npz` (a path or an open binary file)."""
        np.savez(file, **{k: getattr(self, k) for k in _FIELDS})

    @classmethod
    def load(cls, file: str | Path | BinaryIO, name: str | None = None) -> ReplayBuffer:
        """Read a buffer written by `save` (a path or an open binary file; `name` what
        messages call it); refuse a bad or inconsistent file in one line."""
        name = name or str(file)
        try:
            with np.load(file, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in _FIELDS}
        except FileNotFoundError:
            raise ConfigError(f"buffer file not found: {name}") from None
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"buffer file {name} is unreadable: {first[:200]}") from None
        obs = arrays["obs"]
        numeric = all(np.issubdtype(arrays[k].dtype, np.number)
                      for k in ("obs", "action", "reward", "next_obs"))
        flags = all(arrays[k].dtype == bool for k in ("terminated", "truncated"))
        if (not numeric or not flags or obs.ndim != 2 or arrays["action"].ndim != 2
                or arrays["next_obs"].shape != obs.shape or arrays["reward"].ndim != 1
                or any(a.ndim < 1 or a.shape[0] != obs.shape[0] for a in arrays.values())):
            raise ConfigError(f"buffer file {name} has inconsistent arrays")
        n = obs.shape[0]
        buf = cls(arrays["obs"].shape[1], arrays["action"].shape[1], capacity=n)
        for k in _FIELDS:
            buf._data[k][:n] = arrays[k]
        buf._size = n
        return buf
