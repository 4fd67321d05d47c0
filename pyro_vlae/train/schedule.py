"""KL warm-up (Sønderby et al. 2016; Bowman et al. 2016) as a β schedule."""

from __future__ import annotations

from dataclasses import dataclass


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
