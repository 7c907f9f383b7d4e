"""Models built to be compressed: an AST and a CNN, each naming its prunable and quantizable parts.

Knows nothing of compression or search.
"""

from paretone.models._ast import AST
from paretone.models._base import AudioModel, MatMul
from paretone.models._checkpoint import CHECKPOINT_FORMAT, LoadedModel, load_model, save_model
from paretone.models._cnn import CNN
from paretone.models._complexity import Complexity, count_complexity
from paretone.models._config import (
    FAMILIES,
    ASTBlockConfig,
    ASTConfig,
    CNNBlockConfig,
    CNNConfig,
    ModelConfig,
    config_from_dict,
    config_to_dict,
)
from paretone.models._structure import (
    ATTENTION_HEADS,
    CONV_FILTERS,
    FFN_CHANNELS,
    QK_CHANNELS,
    V_CHANNELS,
    ModelStructure,
    PrunableUnit,
    QuantizableLayer,
)


def build_model(config: ModelConfig) -> AudioModel:
    """Instantiate the model class that ``config`` describes (randomly initialised)."""
    return AST(config) if isinstance(config, ASTConfig) else CNN(config)


__all__ = [
    "AST",
    "ATTENTION_HEADS",
    "CHECKPOINT_FORMAT",
    "CNN",
    "CONV_FILTERS",
    "FAMILIES",
    "FFN_CHANNELS",
    "QK_CHANNELS",
    "V_CHANNELS",
    "ASTBlockConfig",
    "ASTConfig",
    "AudioModel",
    "CNNBlockConfig",
    "CNNConfig",
    "Complexity",
    "LoadedModel",
    "MatMul",
    "ModelConfig",
    "ModelStructure",
    "PrunableUnit",
    "QuantizableLayer",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "count_complexity",
    "load_model",
    "save_model",
]
