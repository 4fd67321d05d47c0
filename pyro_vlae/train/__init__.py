"""Training: SVI trainer (also data-parallel), KL warm-up schedule. Checkpoints are
:mod:`pyro_vlae.run_folder`'s."""

from .distributed import DistributedTrainer, data_parallel_elbo, data_parallel_svi
from .schedule import KLWarmup, LayerFadeIn
from .trainer import Trainer, make_elbo

__all__ = [
    "DistributedTrainer",
    "KLWarmup",
    "LayerFadeIn",
    "Trainer",
    "data_parallel_elbo",
    "data_parallel_svi",
    "make_elbo",
]
