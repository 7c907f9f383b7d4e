"""Export to ONNX: the graph starts at the raw waveform (the front-end is inside the model).

Weight nodes are named after the modules that produce them (``blocks.0.attn.q/MatMul``), which is how
compression, its verification and the hardware models address layers in a graph.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import itertools
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from paretone._io import write_atomic
from paretone.models._base import DenseWeightConv
from paretone.runtime import INPUT_NAME, OUTPUT_NAME, STATE_SUFFIX, STREAM_INPUT, STREAM_OUTPUT

WEIGHT_OPS = ("MatMul", "Conv", "Gemm", "LSTM", "GRU")
RECURRENT_OPS = ("LSTM", "GRU")


def export_onnx(model: nn.Module, path: str | os.PathLike[str], *, batch: int | None = None) -> Path:
    """Write ``model`` (eval mode) to ``path`` atomically: waveform in, logits out; a dynamic batch,
    or a fixed one (``batch=1``: what mobile execution providers want).

    Uses the dynamo exporter: the TorchScript one cannot export torchaudio's STFT.
    """
    model = model.eval()
    example = torch.zeros(batch or 2, model.front_end.config.clip_samples)
    dynamic = None if batch else {INPUT_NAME: {0: torch.export.Dim("batch")}}
    return _export(model, (example,), [INPUT_NAME], [OUTPUT_NAME], dynamic, path)


def export_stream(stream: nn.Module, path: str | os.PathLike[str], *, chunk_samples: int) -> Path:
    """Write a streaming model (a family's ``streaming(model)``) for chunks of ``chunk_samples``:
    inputs ``chunk`` (1, chunk_samples) and each state, outputs ``frame_logits`` and ``<state>_out``."""
    stream = stream.eval()
    shapes = stream.state_shapes()
    example = (torch.zeros(1, chunk_samples), *(torch.zeros(shape) for shape in shapes.values()))
    inputs = [STREAM_INPUT, *shapes]
    outputs = [STREAM_OUTPUT, *(f"{name}{STATE_SUFFIX}" for name in shapes)]
    return _export(stream, example, inputs, outputs, None, path)


def _export(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: dict[str, Any] | None,
    path: str | os.PathLike[str],
) -> Path:
    recurrent = any(isinstance(m, nn.RNNBase) for m in model.modules())
    _reuse_torchlib_registry()
    quiet = [logging.getLogger("torch.onnx"), logging.getLogger("onnx_ir"), logging.getLogger("onnxscript")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)  # "torchvision is not installed" notices, folding notes
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                example,
                dynamo=True,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                custom_translation_table=dict(TRANSLATIONS),
                verbose=False,
            )
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        program.save(str(raw))
        proto = onnx.load(str(raw))
    if recurrent:
        proto = _fold_recurrent_weights(proto)
    _name_weight_nodes(proto, _batchnorm_owners(model))
    _compute_dft_in_graph(proto)
    for node in proto.graph.node:  # stack traces and scopes: often more bytes than the weights
        del node.metadata_props[:]
    write_atomic(path, lambda tmp: onnx.save(proto, str(tmp)))
    return Path(path)


@functools.cache
def _reuse_torchlib_registry() -> None:
    """Have ``torch.onnx.export`` copy one registry of torchlib functions per process instead of
    building it afresh for every call: 500+ onnxscript functions, 3-4 s on this machine, a third of an
    export. The copy is a new dict of new lists, so the custom translations each export registers
    stay its own. Without the private hook (another torch), exports just take longer."""
    try:
        from torch.onnx._internal.exporter._registration import ONNXRegistry
    except ImportError:
        return
    build = getattr(ONNXRegistry, "from_torchlib", None)
    if build is None:
        return
    built: dict[int, ONNXRegistry] = {}

    def from_torchlib(cls: type[ONNXRegistry], *args: Any, **kwargs: Any) -> ONNXRegistry:
        key = kwargs.get("opset_version", args[0] if args else None)
        if key not in built:
            built[key] = build(*args, **kwargs)
        copy = cls()
        copy._opset_version = built[key]._opset_version
        copy.functions = {target: list(decomps) for target, decomps in built[key].functions.items()}
        return copy

    from_torchlib.__wrapped__ = build  # type: ignore[attr-defined]  # the original, for tests
    ONNXRegistry.from_torchlib = classmethod(from_torchlib)


TRANSLATIONS: dict[Any, Callable[..., Any]] = {}


def register_translation(op: Any, translate: Callable[..., Any]) -> None:
    """How ``export_onnx`` writes a custom torch op (a family's own kernel, e.g. a recurrent layer)
    as ONNX: an onnxscript function of the op's arguments."""
    TRANSLATIONS[op] = translate


def _fold_recurrent_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Fold the slices and concatenations that reorder PyTorch's gate layout into ONNX's, so each
    LSTM/GRU node reads its weights straight from initializers: ONNX Runtime's dynamic LSTM
    quantizer converts only such nodes. The exporter's own pass stops at 8,192 elements."""
    import onnx_ir as ir
    from onnxscript import optimizer

    model = ir.from_proto(proto)
    optimizer.optimize(model, input_size_limit=1 << 28, output_size_limit=1 << 28)
    folded = ir.to_proto(model)
    inits = {t.name for t in folded.graph.initializer}
    for node in folded.graph.node:
        if node.op_type in RECURRENT_OPS and not all(i in inits for i in node.input[1:4] if i):
            raise RuntimeError(f"export: the weights of {node.op_type} node {node.name} did not fold")
    return folded


DFT_KERNEL = "front_end.mel.dft"  # the (2 * freqs, 1, n_fft) cos/sin kernel of the "dft" front-end


def _compute_dft_in_graph(proto: onnx.ModelProto) -> None:
    """Replace the DFT kernel initializer (a quarter of a small student's file) by the few nodes that
    compute it from an index and the window. ONNX Runtime folds them into a constant when the session
    loads, so the file shrinks and the run costs nothing extra.
    The phase index (k * t) mod n_fft is exact in float32, so the kernel matches to float rounding.
    """
    stored = next((i for i in proto.graph.initializer if i.name == DFT_KERNEL), None)
    if stored is None:
        return
    kernel = numpy_helper.to_array(stored)
    rows, _, n_fft = kernel.shape
    freqs = rows // 2
    window = kernel[0, 0]  # frequency 0: cos(0) * window
    const = {
        "dft_k": np.arange(freqs, dtype=np.float32)[:, None],
        "dft_t": np.arange(n_fft, dtype=np.float32)[None, :],
        "dft_n": np.array(n_fft, dtype=np.float32),
        "dft_scale": np.array(2 * np.pi / n_fft, dtype=np.float32),
        "dft_window": window.astype(np.float32),
        "dft_shape": np.array([rows, 1, n_fft], dtype=np.int64),
    }
    make = helper.make_node
    nodes = [
        make("Mul", ["dft_k", "dft_t"], ["dft_kt"]),
        make("Mod", ["dft_kt", "dft_n"], ["dft_phase_index"], fmod=1),
        make("Mul", ["dft_phase_index", "dft_scale"], ["dft_phase"]),
        make("Cos", ["dft_phase"], ["dft_cos"]),
        make("Sin", ["dft_phase"], ["dft_sin"]),
        make("Neg", ["dft_sin"], ["dft_minus_sin"]),
        make("Concat", ["dft_cos", "dft_minus_sin"], ["dft_rows"], axis=0),
        make("Mul", ["dft_rows", "dft_window"], ["dft_windowed"]),
        make("Reshape", ["dft_windowed", "dft_shape"], [DFT_KERNEL]),
    ]
    proto.graph.initializer.remove(stored)
    proto.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in const.items())
    for node in reversed(nodes):
        proto.graph.node.insert(0, node)


def _batchnorm_owners(model: nn.Module) -> dict[str, str]:
    """BatchNorm name -> the conv right before it among its siblings.

    The exporter folds such a BatchNorm into the conv, and the fused node carries the BatchNorm's
    scope; this maps it back to the conv, the layer compression knows.
    """
    owners = {}
    for parent_name, parent in model.named_modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in itertools.pairwise(children):
            if isinstance(conv, nn.Conv2d | DenseWeightConv) and isinstance(bn, nn.BatchNorm2d):
                prefix = f"{parent_name}." if parent_name else ""
                owners[prefix + bn_name] = prefix + conv_name
    return owners


def _name_weight_nodes(model: onnx.ModelProto, aliases: dict[str, str]) -> None:
    """Name each Conv/MatMul/Gemm node after the module that produced it: ``blocks.0.attn.q/MatMul``
    (``/MatMul_1`` and so on for further nodes of the same module, which must stay unique).

    Compression addresses layers by module name, and so do the hardware models' per-kernel reports.
    """
    taken: set[str] = set()
    for node in model.graph.node:
        if node.op_type not in WEIGHT_OPS:
            continue
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        path = ast.literal_eval(scopes) if scopes else []
        if len(path) >= 2:
            base = f"{aliases.get(path[-2], path[-2])}/{node.op_type}"
            name, count = base, 0
            while name in taken:
                count += 1
                name = f"{base}_{count}"
            node.name = name
            taken.add(name)


def weight_nodes(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """Module name -> the Conv/MatMul/Gemm node computing it, in a graph written by ``export_onnx``."""
    nodes = {}
    for node in model.graph.node:
        module, _, op = node.name.rpartition("/")
        if node.op_type in WEIGHT_OPS and op == node.op_type and module not in nodes:
            nodes[module] = node
    return nodes
