"""Plain ``torch.nn`` networks used inside the Pyro models."""

from .blocks import GaussianHead, Reshape
from .ladder import STEMS, Architecture, architecture, choose_stem, decoder_stage, encoder_stage

__all__ = [
    "STEMS",
    "Architecture",
    "GaussianHead",
    "Reshape",
    "architecture",
    "choose_stem",
    "decoder_stage",
    "encoder_stage",
]
