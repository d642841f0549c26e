"""Bridges to other frameworks' weights; nothing here imports those frameworks."""
from .onnx import export as export_onnx
from .torch import from_torch, to_torch

__all__ = ["from_torch", "to_torch", "export_onnx"]
