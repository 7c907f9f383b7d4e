"""Search spaces: a teacher's structure plus the operators' search parameters -> a sampled space.

Knows models and compress (operators, formats); imports Optuna only for its distributions.
"""

from paretone.spaces._config import SpaceConfig
from paretone.spaces._space import EPOCHS, SPACE_FORMAT, SearchSpace

__all__ = ["EPOCHS", "SPACE_FORMAT", "SearchSpace", "SpaceConfig"]
