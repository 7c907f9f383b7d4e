"""Search spaces: a teacher's structure plus the runtime's format table -> an Optuna-sampled space.

Knows models and compress (recipes, formats); imports Optuna only for its distributions.
"""

from paretone.spaces._config import SpaceConfig
from paretone.spaces._space import SPACE_FORMAT, SearchSpace

__all__ = ["SPACE_FORMAT", "SearchSpace", "SpaceConfig"]
