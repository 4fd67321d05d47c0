"""pyro-vlae-bars: the ``bars`` data set and the ``beta`` likelihood, as pyro-vlae plugins."""

from .data import Bars, make_bars
from .likelihood import Beta

__all__ = ["Bars", "Beta", "make_bars"]
