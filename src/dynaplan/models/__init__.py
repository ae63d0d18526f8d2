"""Learned models: normalizers, the seed's MLP, dynamics and reward models, fitting."""

from dynaplan.models.fit import FitResult, ModelFitter
from dynaplan.models.mlp import MLP, SeedMLP
from dynaplan.models.normalizer import Normalizer
from dynaplan.models.world import DynamicsModel, RewardModel

__all__ = [
    "MLP",
    "DynamicsModel", "FitResult", "ModelFitter", "Normalizer", "RewardModel", "SeedMLP"]
