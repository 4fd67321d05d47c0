"""Decoder likelihoods r(x; f0(z̃1)). More arrive through the ``pyro_vlae.likelihoods`` entry points."""

from .base import Likelihood
from .bernoulli import Bernoulli
from .discretized_logistic import DiscretizedLogistic, DiscretizedLogisticDistribution
from .discretized_logistic_mixture import DiscretizedLogisticMixture, DiscretizedLogisticMixtureDistribution
from .gaussian import Gaussian
from .laplace import Laplace

__all__ = [
    "Likelihood",
    "Gaussian",
    "Bernoulli",
    "Laplace",
    "DiscretizedLogistic",
    "DiscretizedLogisticDistribution",
    "DiscretizedLogisticMixture",
    "DiscretizedLogisticMixtureDistribution",
]
