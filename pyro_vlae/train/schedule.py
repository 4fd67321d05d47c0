"""Training schedules: KL warm-up (Sønderby et al. 2016; Bowman et al. 2016) as a β
schedule, and the top-down fade-in of latent layers (progressive training, Li et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass

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
    spirit of pro-VLAE, Li, Kao, Lin et al., ICLR 2020).

    Layer z_L is on from the start. Layer z_l, counted from the top by i = L − l, is off
    (its ladder path ``v_l(z_l)`` multiplied by 0) until step ``i · stage_steps − ramp``
    and then rises linearly to fully on at step ``i · stage_steps``, where ``ramp`` is
    ``stage_steps // 2``. The deep path learns the data's most abstract variation before
    the shallower paths, which reach the output through fewer layers, may take it.
    ``stage_steps = 0`` keeps every layer on.
    """

    stage_steps: int = 0

    def __post_init__(self) -> None:
        if self.stage_steps < 0:
            raise ValueError(f"fade-in stage steps must be >= 0, got {self.stage_steps}")

    def end(self, num_layers: int) -> int:
        """The first step at which every layer is fully on."""
        return (num_layers - 1) * self.stage_steps

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
