"""The ladder of deterministic stages shared by every model, chosen from the data's shape.

An *architecture* splits the authors' small / medium / large stacks (``vladder_small.py``,
``vladder_medium.py``, ``vladder_large.py`` of ermongroup/Variational-Ladder-Autoencoder)
into ``L`` levels. Level ``l`` is the inference stage ``g_l`` of eq. (12), mapping
features of shape ``S_{l-1}`` to ``S_l`` (``S_0`` is one data point); its transpose is the
generative stage ``u_l`` of eq. (11) (or ``f_0`` of eq. (10) for level 1). Levels below the
top take one convolutional stage each; the top level takes the remaining convolutions,
flattens, and applies two dense layers; levels beyond the convolutional stages are dense.
The ``lvae-mlp`` stem is the Ladder VAE paper's (Sønderby et al. 2016): dense levels only,
narrowing from level to level.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from torch import Tensor, nn

from ..errors import ConfigError
from .blocks import Reshape, Stage, conv_bn_lrelu, deconv, deconv_bn_lrelu, fc_bn

Shape = tuple[int, ...]
Spec = tuple  # ("conv", channels, stride) or ("fc", units)


@dataclass(frozen=True)
class Stem:
    """The authors' network family for one kind of input."""

    name: str
    stages: tuple[tuple[tuple[int, int], ...], ...]  # per stage: (channels, stride) convolutions
    hidden: int  # width of the dense layers
    description: str
    #: dense width per level (level l: two dense layers of ``level_widths[l-1]``, the last
    #: repeated beyond the list); empty: every level is ``hidden`` wide
    level_widths: tuple[int, ...] = ()

    def dense_width(self, level: int) -> int:
        """Width of the dense layers of level ``level`` (counted from 0), before ``--width``."""
        if not self.level_widths:
            return self.hidden
        return self.level_widths[min(level, len(self.level_widths) - 1)]


STEMS: dict[str, Stem] = {
    "mlp": Stem("mlp", (), 512, "dense layers only, for flat vectors"),
    # Sønderby et al. 2016 (the authors' casperkaae/LVAE, ``run_models.py``): per stochastic layer an MLP
    # of two dense + BN + leaky-ReLU layers, 512-256-128-64-32 units from the data up
    "lvae-mlp": Stem(
        "lvae-mlp", (), 512, "dense levels of 512-256-128-64-32 units (the LVAE paper's MLPs)", (512, 256, 128, 64, 32)
    ),
    "small": Stem("small", (((64, 2), (128, 2)),), 1024, "28×28 images (vladder_small, MNIST)"),
    "medium": Stem(
        "medium",
        (((64, 2), (64, 1)), ((128, 2), (128, 1)), ((256, 2), (256, 1))),
        1024,
        "32×32 images (vladder_medium, SVHN)",
    ),
    "large": Stem(
        "large",
        (((64, 2), (64, 1)), ((128, 2), (128, 1), (256, 2)), ((256, 1), (512, 2), (512, 1))),
        1024,
        "64×64 images (vladder_large, CelebA, LSUN)",
    ),
}


def choose_stem(x_shape: Shape) -> str:
    """The stem the authors would use for data points of shape ``x_shape``."""
    if len(x_shape) == 1:
        return "mlp"
    if len(x_shape) != 3:
        raise ConfigError(
            f"data points must be flat vectors (D,) or images (C, H, W), got shape {x_shape}",
            "reshape the data to (N, D) or (N, C, H, W)",
        )
    _, h, w = x_shape
    if h == w == 64:
        return "large"
    if h % 8 == 0 and w % 8 == 0:
        return "medium"
    if h % 4 == 0 and w % 4 == 0:
        return "small"
    raise ConfigError(
        f"images of size {h}×{w} are not supported by the convolutional stems",
        "resize or pad images so height and width are multiples of 4 (28, 32, 64, ...)",
    )


def _after(spec: Spec, shape: Shape) -> Shape:
    if spec[0] == "fc":
        return (spec[1],)
    _, channels, stride = spec
    return (channels, shape[1] // stride, shape[2] // stride)


@dataclass(frozen=True)
class Architecture:
    """Per-level layer specs and the feature shapes ``S_0 .. S_L`` between them."""

    stem: str
    levels: tuple[tuple[Spec, ...], ...]
    shapes: tuple[Shape, ...]

    @property
    def num_layers(self) -> int:
        return len(self.levels)


def architecture(x_shape: Shape, num_layers: int, stem: str = "auto", width: float = 1.0) -> Architecture:
    """Split ``stem`` into ``num_layers`` levels for data of shape ``x_shape``.

    :param width: multiplies every channel count and dense width (1.0 = the authors').
    """
    if num_layers < 1:
        raise ConfigError(f"need at least one latent layer, got {num_layers}", "give z_dims a value")
    if not width > 0:
        raise ConfigError(f"width must be positive, got {width}", "use e.g. --width 1.0")
    name = choose_stem(x_shape) if stem == "auto" else stem
    if name not in STEMS:
        raise ConfigError(f"unknown stem {stem!r}", f"choose one of: auto, {', '.join(STEMS)}")
    spec = STEMS[name]
    if spec.stages and len(x_shape) != 3:
        raise ConfigError(f"stem {name!r} needs images (C, H, W), got {x_shape}", "use --stem mlp")
    scale = lambda n: max(8, round(n * width))  # noqa: E731
    convs = [tuple(("conv", scale(c), s) for c, s in stage) for stage in spec.stages]

    def dense(level: int) -> tuple[Spec, ...]:
        hidden = max(16, round(spec.dense_width(level) * width))
        return (("fc", hidden), ("fc", hidden))

    top = num_layers - 1
    levels = [convs[i] if i < len(convs) else dense(i) for i in range(top)]
    rest = [c for stage in convs[top:] for c in stage]
    levels.append(tuple(rest) + dense(top))
    shapes = [tuple(x_shape)]
    for level in levels:
        shape = shapes[-1]
        for s in level:
            shape = _after(s, shape)
            if len(shape) == 3 and min(shape[1:]) < 1:
                raise ConfigError(f"images of shape {x_shape} are too small for stem {name!r}")
        shapes.append(shape)
    return Architecture(name, tuple(levels), tuple(shapes))


def encoder_stage(level: tuple[Spec, ...], in_shape: Shape) -> Stage:
    """The inference stage g_l (eq. 12): convolutions and/or dense layers with BN, lReLU."""
    layers: list[nn.Module] = []
    shape = in_shape
    for s in level:
        if s[0] == "fc":
            if len(shape) > 1:
                layers.append(nn.Flatten())
            layers.append(fc_bn(math.prod(shape), s[1], nn.LeakyReLU(0.1)))
        else:
            if len(shape) == 1:
                raise ConfigError("a convolution cannot follow a dense layer")
            layers.append(conv_bn_lrelu(shape[0], s[1], s[2]))
        shape = _after(s, shape)
    return Stage(len(in_shape), *layers)


def decoder_stage(
    level: tuple[Spec, ...], in_shape: Shape, concat: bool, out_channels: int | None = None
) -> Stage:
    """The transpose of :func:`encoder_stage`: maps features shaped like its output back to
    ``in_shape``. With ``concat`` the input has twice the channels (eq. 11's
    ``[z̃_{l+1}; v_l(z_l)]``). With ``out_channels`` the last layer is a bare linear map to
    that many channels (the likelihood's parameters, ``f_0`` of eq. 10)."""
    shapes = [tuple(in_shape)]
    for s in level:
        shapes.append(_after(s, shapes[-1]))
    layers: list[nn.Module] = []
    for i in reversed(range(len(level))):
        s, src, dst = level[i], shapes[i + 1], shapes[i]
        n_in = src[0] * (2 if concat and i == len(level) - 1 else 1)
        last = i == 0 and out_channels is not None
        if last:
            dst = (out_channels, *dst[1:])
        if s[0] == "fc":
            n_out = math.prod(dst)
            if last:
                layers.append(nn.Linear(n_in * math.prod(src[1:]), n_out))
            else:
                layers.append(fc_bn(n_in * math.prod(src[1:]), n_out, nn.ReLU()))
            if len(dst) > 1:
                layers.append(Reshape(dst))
        else:
            layers.append(deconv(n_in, dst[0], s[2]) if last else deconv_bn_lrelu(n_in, dst[0], s[2]))
    return Stage(len(shapes[-1]), *layers)


def latent_to_features(z_dim: int, shape: Shape, norm: bool = True) -> Stage:
    """v_l of eq. (11) (and f_L of eq. 8 when ``shape`` is flat): dense → BN → ReLU → reshape
    (without ``norm``: dense → ReLU → reshape)."""
    layers: list[nn.Module] = [fc_bn(z_dim, math.prod(shape), nn.ReLU(), norm)]
    if len(shape) > 1:
        layers.append(Reshape(shape))
    return Stage(1, *layers)


def bottom_up(stages: Iterable[nn.Module], heads: Iterable[nn.Module], x: Tensor) -> list[tuple[Tensor, Tensor]]:
    """The ladder's deterministic bottom-up pass h_l = g_l(h_{l-1}) from h_0 = x, with each
    level's head (μ_l, σ_l) = head_l(h_l) (eqs. 12–13): the VLAE's q(z_l | x), the LVAE's
    (μ̂_l, σ̂_l)."""
    h, params = x, []
    for g, head in zip(stages, heads):
        h = g(h)
        params.append(head(h))
    return params
