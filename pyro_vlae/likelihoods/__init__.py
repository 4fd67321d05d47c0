"""Decoder likelihoods r(x; f0(z̃1)). More arrive through the ``pyro_vlae.likelihoods`` entry points."""

from .base import Likelihood
from .bernoulli import Bernoulli
from .gaussian import Gaussian

__all__ = ["Likelihood", "Gaussian", "Bernoulli"]
