"""pyro-vlae: variational ladder autoencoders and hierarchical VAEs as Pyro model/guide pairs.

>>> from pyro_vlae import VLAE, Gaussian
>>> model = VLAE(x_shape=(3, 32, 32), z_dims=(3, 3, 3), likelihood=Gaussian(scale=0.1))

``model.model`` and ``model.guide`` are an ordinary Pyro model/guide pair with sample
sites ``z1`` (nearest to x) … ``zL`` and ``x``; train them with ``pyro.infer.SVI``.
"""

from ._version import __version__
from .config import RunConfig
from .data import DatasetPlugin, Shapes, TensorData
from .errors import PyroVlaeError
from .likelihoods import Bernoulli, Gaussian, Likelihood
from .models import MODELS, VLAE, LatentModel, build_model
from .train import KLWarmup, Trainer

__all__ = [
    "__version__",
    "MODELS",
    "VLAE",
    "Bernoulli",
    "DatasetPlugin",
    "Gaussian",
    "KLWarmup",
    "LatentModel",
    "Likelihood",
    "PyroVlaeError",
    "RunConfig",
    "Shapes",
    "TensorData",
    "Trainer",
    "build_model",
]
