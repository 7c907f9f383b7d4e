"""Compression: the recipe of a compressed model, pruning, quantization, distillation and export.

Today it holds the ONNX export every later operator builds on.
"""

from paretone.compress._export import INPUT_NAME, OUTPUT_NAME, export_onnx, onnx_logits

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "export_onnx", "onnx_logits"]
