"""Training schedules: KL warm-up (Sønderby et al. 2016; Bowman et al. 2016) as a β
schedule, and the top-down fade-in of latent layers (progressive training, Li et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class KLWarmup:
    """β rises linearly from ``start`` to ``end`` over ``steps`` steps, then stays at ``end``.

    β multiplies the latent sites' log-densities through ``poutine.scale``, so the objective
    is E_q[log p(x|z)] − β·KL(q(z|x) ‖ p(z)). ``poutine.scale`` refuses 0, hence
    ``start > 0``. ``steps=0`` or ``start == end`` gives a constant β (a β-VAE when β ≠ 1).
    """

    steps: int = 0
    start: float = 1e-3
    end: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.start <= self.end:
            raise ValueError(f"need 0 < start <= end, got start={self.start}, end={self.end}")
        if self.steps < 0:
            raise ValueError(f"warm-up steps must be >= 0, got {self.steps}")

    def __call__(self, step: int) -> float:
        if self.steps == 0 or step >= self.steps:
            return self.end
        return self.start + (self.end - self.start) * step / self.steps


@dataclass(frozen=True)
class LayerFadeIn:
    """Fade the latent layers of a ladder in from the top down (progressive training in the
    spirit of pro-VLAE, Li, Murkute, Gyawali & Wang, ICLR 2020).

    Layer z_L is on from the start. Layer z_l, counted from the top by i = L − l, is off
    (its ladder path ``v_l(z_l)`` multiplied by 0) until step ``i · stage_steps − ramp``
    and then rises linearly to fully on at step ``i · stage_steps``, where ``ramp`` is
    ``stage_steps // 2``. The deep path learns the data's most abstract variation before
    the shallower paths, which reach the output through fewer layers, may take it.
    ``stage_steps = 0`` keeps every layer on. :meth:`for_run` fits the stages to a run's length.
    """

    stage_steps: int = 0

    def __post_init__(self) -> None:
        if self.stage_steps < 0:
            raise ValueError(f"fade-in stage steps must be >= 0, got {self.stage_steps}")

    @staticmethod
    def stage_for(fade_in: float, steps: int, num_layers: int) -> int:
        """The ``stage_steps`` of ``--fade-in``: an integer N ≥ 0 is N steps per layer (0: off),
        whatever the run's length; a fraction f in (0, 1) follows the run, every layer being
        fully on after f · ``steps``: L − 1 stages of round(f · steps / (L − 1)) steps (at
        least 1), so each layer then trains fully on for the remaining (1 − f) of the run."""
        if isinstance(fade_in, int) and fade_in >= 0:
            return fade_in
        if not 0 < fade_in < 1:
            raise ValueError(f"a fade-in is a whole number of steps or a fraction in (0, 1), got {fade_in}")
        return 0 if num_layers < 2 else max(1, round(fade_in * steps / (num_layers - 1)))

    def end(self, num_layers: int) -> int:
        """The first step at which every layer is fully on."""
        return (num_layers - 1) * self.stage_steps

    def fully_on_at(self, num_layers: int) -> list[int]:
        """The first step at which each of z1..zL is fully on (z_L: 0)."""
        return [(num_layers - 1 - k) * self.stage_steps for k in range(num_layers)]

    def never_fully_on(self, steps: int, num_layers: int) -> list[int]:
        """The layers (0-based, z1 first) that are not fully on in any of a run's ``steps``
        steps (numbered 0 .. steps − 1)."""
        return [k for k, full in enumerate(self.fully_on_at(num_layers)) if full >= steps]

    def state(self, steps: int, num_layers: int) -> dict[str, Any]:
        """The schedule after ``steps`` steps, as a run records it: ``stage_steps``, ``steps``,
        each layer's gate in its last step (``gates``, all 1 before the first) and the step it
        is fully on from (``fully_on_at``)."""
        gates = self(max(0, steps - 1), num_layers) if steps > 0 else torch.ones(num_layers)
        return {"stage_steps": self.stage_steps, "steps": steps, "gates": [round(float(g), 4) for g in gates],
                "fully_on_at": self.fully_on_at(num_layers)}

    def __call__(self, step: int, num_layers: int) -> torch.Tensor:
        """Gates of z1..zL at ``step``: a tensor of ``num_layers`` values in [0, 1]."""
        gates = torch.ones(num_layers)
        if self.stage_steps == 0:
            return gates
        ramp = max(1, self.stage_steps // 2)
        for k in range(num_layers - 1):  # z_{k+1} sits L − (k + 1) stages below the top
            full = (num_layers - 1 - k) * self.stage_steps
            gates[k] = min(1.0, max(0.0, (step - (full - ramp)) / ramp))
        return gates
