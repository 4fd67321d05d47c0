"""The pictures of an evaluation in a run folder: ``latents.png`` (KL per layer and PCA of
posterior means), ``hierarchy.png`` (the probe matrix) and ``intervention.png`` (the
intervention matrix), each drawn from its :mod:`~pyro_vlae.evaluate.results` object."""

from __future__ import annotations

from pathlib import Path

from ..plotting import plot_layers, plot_matrix
from ..run_folder import HIERARCHY, INTERVENTION, LATENTS
from .results import Evaluation


def draw_evaluation(evaluation: Evaluation, folder: str | Path) -> list[Path]:
    """Draw the pictures of ``evaluation`` into ``folder``: ``latents.png`` always,
    ``hierarchy.png`` and ``intervention.png`` when those were measured."""
    folder = Path(folder)
    paths = [plot_layers(evaluation.layers, folder / LATENTS)]
    if evaluation.hierarchy is not None:
        paths.append(plot_matrix(evaluation.hierarchy.heat_map(), folder / HIERARCHY))
    if evaluation.intervention is not None:
        paths.append(plot_matrix(evaluation.intervention.heat_map(), folder / INTERVENTION))
    return paths


__all__ = ["draw_evaluation"]
