"""Training: SVI trainer (also data-parallel), KL warm-up schedule, checkpoints."""

from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .distributed import DistributedTrainer, data_parallel_elbo, data_parallel_svi
from .schedule import KLWarmup, LayerFadeIn
from .trainer import Trainer, make_elbo

__all__ = [
    "CHECKPOINT",
    "DistributedTrainer",
    "KLWarmup",
    "LayerFadeIn",
    "Trainer",
    "data_parallel_elbo",
    "data_parallel_svi",
    "load_checkpoint",
    "make_elbo",
    "save_checkpoint",
]
