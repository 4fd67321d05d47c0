"""Building blocks of the authors' networks (``abstract_network.py``), in plain ``torch.nn``.

Deliberate deviations from the TensorFlow original, documented in ``docs/architecture.md``:
batch norm keeps its learned scale γ (TF used ``scale=False``) and uses PyTorch's
momentum 0.1 instead of decay 0.999, so running statistics are usable after short runs;
stride-1 convolutions are 3×3 (TF's 'SAME' 4×4 pads asymmetrically, which PyTorch can
only do by copying the input), stride-2 convolutions keep the authors' 4×4.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LEAK = 0.1  # the authors' leaky-ReLU slope


class Stage(nn.Sequential):
    """``nn.Sequential`` over inputs ``(*batch, *event)`` with any number of leading batch
    dimensions, ``event_dim`` trailing ones per point: the batch dimensions are flattened into
    one for the layers (batch norm and convolutions take ``(N, ...)``) and restored on the
    output. Pyro adds such dimensions with ``Trace_ELBO(vectorize_particles=True)`` and
    ``Predictive(parallel=True)``. Its parameters are named as ``nn.Sequential``'s."""

    def __init__(self, event_dim: int, *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.event_dim = int(event_dim)

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[: x.dim() - self.event_dim]
        if len(batch) == 1:
            return super().forward(x)
        y = super().forward(x.reshape(-1, *x.shape[len(batch) :]))
        return y.reshape(*batch, *y.shape[1:])

    def extra_repr(self) -> str:
        return f"event_dim={self.event_dim}"


def conv_bn_lrelu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """Convolution → batch norm → leaky ReLU(0.1): 4×4 stride 2, or 3×3 stride 1 (see above)."""
    kernel = 4 if stride == 2 else 3
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(LEAK),
    )


def deconv(c_in: int, c_out: int, stride: int) -> nn.Module:
    """The transpose of :func:`conv_bn_lrelu`'s convolution."""
    if stride == 2:
        return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
    return nn.Conv2d(c_in, c_out, 3, stride=1, padding=1)


def deconv_bn_lrelu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """Transposed convolution → batch norm → leaky ReLU(0.1) (``conv2d_t_bn_relu``)."""
    layer = deconv(c_in, c_out, stride)
    layer.bias = None  # batch norm follows
    return nn.Sequential(layer, nn.BatchNorm2d(c_out), nn.LeakyReLU(LEAK))


def fc_bn(n_in: int, n_out: int, activation: nn.Module, norm: bool = True) -> Stage:
    """Dense → batch norm → activation (``fc_bn_lrelu`` / ``fc_bn_relu``), on ``(*batch, n_in)``;
    without ``norm``, dense (with a bias) → activation."""
    if not norm:
        return Stage(1, nn.Linear(n_in, n_out), activation)
    return Stage(1, nn.Linear(n_in, n_out, bias=False), nn.BatchNorm1d(n_out), activation)


class Reshape(nn.Module):
    """Reshape the non-batch dimensions to ``shape``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class GaussianHead(nn.Module):
    """A ladder connection: flatten, then linear maps to (μ, σ) with σ = sigmoid(·) + ε.

    The paper's appendix B.2: "we always flatten convolutional layers and apply linear
    transformation to reduce dimension for each ladder connection". The authors' σ is
    ``sigmoid(fc) + 0.001`` (``vladder.py``); it caps σ near the prior's 1.

    With ``hidden`` the flattened features first pass two dense → batch norm → leaky-ReLU
    layers of that width, as the authors' ``ladder1``/``ladder2`` of the small (MNIST)
    network (``vladder_small.py``: ``fc_bn_lrelu 1024 ×2 → μ, σ``).
    """

    def __init__(
        self, in_shape: tuple[int, ...], z_dim: int, min_scale: float = 1e-3, hidden: int | None = None
    ) -> None:
        super().__init__()
        n_in = math.prod(in_shape)
        flatten = nn.Flatten(-len(in_shape))  # leading batch dimensions stay
        if hidden:
            self.body = nn.Sequential(
                flatten, fc_bn(n_in, hidden, nn.LeakyReLU(LEAK)), fc_bn(hidden, hidden, nn.LeakyReLU(LEAK))
            )
            n_in = hidden
        else:
            self.body = flatten
        self.loc = nn.Linear(n_in, z_dim)
        self.scale = nn.Linear(n_in, z_dim)
        self.min_scale = min_scale

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(h)
        return self.loc(h), torch.sigmoid(self.scale(h)) + self.min_scale


class GatedAdd(nn.Module):
    """The authors' ``gated_add`` ladder combination (``vladder_small.py``):
    ``z̃ + g ⊙ v(z)`` with a learnable gate ``g`` per unit (per channel for feature maps),
    initialised to ``init`` (0.1), in place of eq. (11)'s concatenation ``[z̃; v(z)]``."""

    def __init__(self, shape: tuple[int, ...], init: float = 0.1) -> None:
        super().__init__()
        gate_shape = (shape[0],) + (1,) * (len(shape) - 1)
        self.gate = nn.Parameter(torch.full(gate_shape, float(init)))

    def forward(self, h: Tensor, v: Tensor) -> Tensor:
        return h + self.gate * v


def init_weights(module: nn.Module) -> None:
    """The authors' initialisation for convolutions: N(0, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
