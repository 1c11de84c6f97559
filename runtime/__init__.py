"""Torch-free runtime for exported bundles; installed as ``instancevg.runtime``."""
