"""Interaction data."""

from dynaplan.data.buffer import ReplayBuffer, Split

__all__ = ["ReplayBuffer", "Split"]
