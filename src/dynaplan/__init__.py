"""dynaplan: model-based reinforcement learning with model-predictive control.

Learn a dynamics model and a reward model from interaction data, then plan through them
with sampling-based optimizers (random shooting, CEM), replanning at every step.
"""

from dynaplan.config import TrainConfig
from dynaplan.errors import ConfigError

__all__ = ["ConfigError", "TrainConfig", "__version__"]
__version__ = "0.1.0"
