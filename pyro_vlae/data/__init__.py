"""Data sets: the plugin interface and the embedded ``shapes`` set."""

from .base import DatasetPlugin, StreamData, TensorData
from .shapes import Shapes, make_shapes

__all__ = ["DatasetPlugin", "StreamData", "TensorData", "Shapes", "make_shapes"]
