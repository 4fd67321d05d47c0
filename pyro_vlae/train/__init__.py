"""Training: SVI trainer, KL warm-up schedule, checkpoints."""

from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .schedule import KLWarmup
from .trainer import Trainer, make_elbo

__all__ = ["CHECKPOINT", "KLWarmup", "Trainer", "load_checkpoint", "make_elbo", "save_checkpoint"]
