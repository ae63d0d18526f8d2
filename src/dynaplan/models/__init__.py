"""Learned models in plain torch: normalizers, the seed's MLP, dynamics and reward models,
the probabilistic ensemble and its propagation, and the one `fit` that trains them all.
Nothing here knows about accelerators (accel/)."""

from dynaplan.models.deterministic_ensemble import DeterministicEnsemble
from dynaplan.models.ensemble import GaussianEnsemble
from dynaplan.models.fitting import Bootstrap, FitPart, FitResult, Minibatches, fit
from dynaplan.models.members import Ensemble
from dynaplan.models.mlp import MLP, SeedMLP
from dynaplan.models.normalizer import Normalizer
from dynaplan.models.propagation import EnsembleDynamics
from dynaplan.models.world import DynamicsModel, RewardModel

__all__ = [
    "MLP",
    "Bootstrap",
    "DeterministicEnsemble",
    "DynamicsModel",
    "Ensemble",
    "EnsembleDynamics",
    "FitPart",
    "FitResult",
    "GaussianEnsemble",
    "Minibatches",
    "Normalizer",
    "RewardModel",
    "SeedMLP",
    "fit",
]
