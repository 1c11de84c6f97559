"""Deployment export (ONNX, INT8, TensorRT); installed as ``instancevg.export``."""
