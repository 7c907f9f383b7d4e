"""Model families built to be compressed, each naming its prunable and quantizable parts.

A family (``Family``) owns everything about one kind of model; families are registered by name
(``FAMILIES``) and found from a configuration's ``family`` field. Knows nothing of compression or
search.
"""

from paretone.models._ast import AST, AST_FAMILY, ASTBlockConfig, ASTConfig
from paretone.models._base import AudioModel, DenseWeightConv, MatMul
from paretone.models._checkpoint import (
    CHECKPOINT_FORMAT,
    CONFIG_FILE,
    WEIGHTS_FILE,
    LoadedModel,
    load_model,
    read_header,
    save_model,
)
from paretone.models._cnn import CNN, CNN_FAMILY, CNNBlockConfig, CNNConfig
from paretone.models._complexity import Complexity, count_complexity
from paretone.models._family import Elementwise, Family, SizeOption
from paretone.models._kernels import (
    KERNEL_KINDS,
    LAYER_NODE,
    Kernel,
    KernelKind,
    LayerKernel,
    front_end_kernel,
    register_kernel_kind,
    width_grid,
)
from paretone.models._onnx import export_onnx, export_stream, weight_nodes
from paretone.models._qcnn import (
    QCNN,
    QCNN_FAMILY,
    QUATERNION_FILTERS,
    QCNNBlockConfig,
    QCNNConfig,
    QuaternionConv2d,
)
from paretone.models._recurrent import (
    GRU_FAMILY,
    HIDDEN_UNITS,
    LSTM_FAMILY,
    GRUConfig,
    LSTMConfig,
    RecurrentConfig,
    RecurrentModel,
    StreamingRecurrent,
    streaming_front_end,
)
from paretone.models._registry import (
    FAMILIES,
    build_model,
    config_from_dict,
    config_to_dict,
    family_named,
    family_of,
    model_kernels,
    register_family,
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

__all__ = [
    "AST",
    "AST_FAMILY",
    "ATTENTION_HEADS",
    "CHECKPOINT_FORMAT",
    "CNN",
    "CNN_FAMILY",
    "CONFIG_FILE",
    "CONV_FILTERS",
    "FAMILIES",
    "FFN_CHANNELS",
    "GRU_FAMILY",
    "HIDDEN_UNITS",
    "KERNEL_KINDS",
    "LAYER_NODE",
    "LSTM_FAMILY",
    "QCNN",
    "QCNN_FAMILY",
    "QK_CHANNELS",
    "QUATERNION_FILTERS",
    "V_CHANNELS",
    "WEIGHTS_FILE",
    "ASTBlockConfig",
    "ASTConfig",
    "AudioModel",
    "CNNBlockConfig",
    "CNNConfig",
    "Complexity",
    "DenseWeightConv",
    "Elementwise",
    "Family",
    "GRUConfig",
    "Kernel",
    "KernelKind",
    "LSTMConfig",
    "LayerKernel",
    "LoadedModel",
    "MatMul",
    "ModelStructure",
    "PrunableUnit",
    "QCNNBlockConfig",
    "QCNNConfig",
    "QuantizableLayer",
    "QuaternionConv2d",
    "RecurrentConfig",
    "RecurrentModel",
    "SizeOption",
    "StreamingRecurrent",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "count_complexity",
    "export_onnx",
    "export_stream",
    "family_named",
    "family_of",
    "front_end_kernel",
    "load_model",
    "model_kernels",
    "read_header",
    "register_family",
    "register_kernel_kind",
    "save_model",
    "streaming_front_end",
    "weight_nodes",
    "width_grid",
]
