"""Hardware models: measuring ONNX files on a device, and (later) predicting latency and memory.

Reads ONNX graphs; knows no Optuna and no Ray.
"""

from paretone.hw_models._graph import onnx_macs
from paretone.hw_models._measure import LatencyMeasurement, make_session, measure_latency

__all__ = ["LatencyMeasurement", "make_session", "measure_latency", "onnx_macs"]
