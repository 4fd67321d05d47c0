"""Data sets: the plugin interface and the embedded ``shapes`` set."""

from .base import Data, DatasetPlugin, StreamData, TensorData
from .shapes import Shapes, make_shapes

__all__ = ["Data", "DatasetPlugin", "StreamData", "TensorData", "Shapes", "make_shapes"]
