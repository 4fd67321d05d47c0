"""pyro-vlae: variational ladder autoencoders and hierarchical VAEs as Pyro model/guide pairs.

>>> from pyro_vlae import VLAE, Gaussian
>>> vlae = VLAE(x_shape=(3, 32, 32), z_dims=(3, 3, 3), likelihood=Gaussian(scale=0.1), name="vlae")

``vlae.model`` and ``vlae.guide`` are an ordinary Pyro model/guide pair with sample sites
``z1`` (nearest to x) … ``zL`` and ``x`` in the plate ``"data"``; train them with
``pyro.infer.SVI``. The documented API is what this package exports: the models ``VLAE``,
``HVAE``, ``LVAE``, ``VAE``; the likelihoods ``Gaussian``, ``Bernoulli``, ``Laplace``,
``DiscretizedLogistic``, ``DiscretizedLogisticMixture``; ``load_run`` (a trained run folder's
model), ``Trainer``, ``KLWarmup`` and the data-set classes.
"""

from ._version import __version__
from .config import RunConfig
from .data import DatasetPlugin, Shapes, TensorData
from .errors import PyroVlaeError
from .likelihoods import Bernoulli, DiscretizedLogistic, DiscretizedLogisticMixture, Gaussian, Laplace, Likelihood
from .models import HVAE, LVAE, MODELS, VAE, VLAE, LatentModel, build_model
from .run_folder import load_run
from .train import KLWarmup, Trainer

__all__ = [
    "__version__",
    "MODELS",
    "HVAE",
    "LVAE",
    "VAE",
    "VLAE",
    "Bernoulli",
    "DatasetPlugin",
    "DiscretizedLogistic",
    "DiscretizedLogisticMixture",
    "Gaussian",
    "KLWarmup",
    "Laplace",
    "LatentModel",
    "Likelihood",
    "PyroVlaeError",
    "RunConfig",
    "Shapes",
    "TensorData",
    "Trainer",
    "build_model",
    "load_run",
]
