"""The variational ladder autoencoder (Zhao, Song & Ermon, ICML 2017, section 4.1)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import Tensor, nn

from ..errors import ConfigError
from ..likelihoods import Likelihood
from ..nets.blocks import GatedAdd, GaussianHead, fc_bn
from ..nets.ladder import bottom_up, decoder_stage, encoder_stage, latent_to_features
from .base import DEFAULT_Z_DIMS, LadderModel, kl_weight, latent_method


class VLAE(LadderModel):
    r"""Variational ladder autoencoder: a *flat* prior p(z) = N(0, I) over z = (z1..zL) with a
    ladder of networks of growing depth, so deeper layers carry more abstract features.

    Generative network (eqs. 8–11)::

        z̃_L = f_L(z_L)
        z̃_l = u_l([z̃_{l+1}; v_l(z_l)])        l = L-1 .. 1
        x   ~ r(x; f_0(z̃_1))

    Inference network (eqs. 12–13)::

        h_l = g_l(h_{l-1}),  h_0 = x
        z_l ~ N(μ_l(h_l), σ_l(h_l))

    Ladder connections (``μ_l``, ``σ_l``, ``v_l``) are flattened and linear (appendix B.2);
    ``g_l``/``u_l`` follow the authors' small/medium/large stacks chosen from ``x_shape``.

    Two choices of the authors' MNIST network are options: ``combine="gated"`` replaces the
    concatenation of eq. (11) by their gated addition ``z̃_{l+1} + g_l ⊙ v_l(z_l)`` (g_l
    initialised to 0.1), and ``heads="mlp"`` puts two dense layers in every ladder head
    (μ_l, σ_l). ``z_norm="none"`` drops the batch norm of the dense layers that read a
    latent (``v_l`` and the first layer of ``f_L``). ``kl_weights`` weighs each layer's KL
    term. ``layer_gates`` (a buffer, all ones) scales each ``v_l(z_l)``; the trainer's
    :class:`~pyro_vlae.train.LayerFadeIn` schedule uses it to fade the layers in from the top
    down (progressive training, Li et al., ICLR 2020).

    Parameters as :class:`~pyro_vlae.models.base.LadderModel`, and:

    :param combine: ``"concat"`` (eq. 11) or ``"gated"`` (the authors' ``gated_add``).
    :param heads: ``"linear"`` ladder heads (appendix B.2) or ``"mlp"`` (two dense layers).
    :param z_norm: ``"batch"``: the dense layers that read z_l (``v_l``, ``f_L``'s first) are
        dense → batch norm → ReLU, as the authors'; ``"none"``: dense (with bias) → ReLU. Batch
        norm there makes the decoder blind to the scale of z_l during training (batch
        statistics) but not when sampling (running statistics of posterior samples).
    :param kl_weights: one weight w_l per layer on its KL term,
        E_q[log r(x|z)] − β Σ_l w_l KL(q(z_l|x) ‖ p(z_l)) (all 1: the ELBO of eq. 2); a weight
        above 1 makes information in z_l dearer, as β does for the whole code (β-VAE).
    """

    COMBINES = ("concat", "gated")
    HEADS = ("linear", "mlp")
    Z_NORMS = ("batch", "none")

    def __init__(
        self,
        x_shape: Sequence[int],
        z_dims: Sequence[int] = DEFAULT_Z_DIMS,
        likelihood: Likelihood | None = None,
        stem: str = "auto",
        width: float = 1.0,
        combine: str = "concat",
        heads: str = "linear",
        kl_weights: Sequence[float] | None = None,
        z_norm: str = "batch",
        name: str | None = None,
    ) -> None:
        super().__init__(x_shape, z_dims, likelihood, stem, width, name)
        if combine not in self.COMBINES:
            raise ConfigError(f"unknown ladder combination {combine!r}", f"use one of: {', '.join(self.COMBINES)}")
        if heads not in self.HEADS:
            raise ConfigError(f"unknown ladder heads {heads!r}", f"use one of: {', '.join(self.HEADS)}")
        if z_norm not in self.Z_NORMS:
            raise ConfigError(f"unknown z_norm {z_norm!r}", f"use one of: {', '.join(self.Z_NORMS)}")
        self.kl_weights = self.check_kl_weights(kl_weights or (1.0,) * self.num_layers, self.num_layers)
        arch, self.combine, self.heads, self.z_norm = self.arch, combine, heads, z_norm
        S, L = arch.shapes, self.num_layers
        hidden = S[L][0]
        # inference: g_l and the ladder heads (μ_l, σ_l)
        self.inference = nn.ModuleList(encoder_stage(arch.levels[i], S[i]) for i in range(L))
        self.ladder = nn.ModuleList(
            GaussianHead(S[i + 1], self.z_dims[i], hidden=hidden if heads == "mlp" else None) for i in range(L)
        )
        # generative: f_L, v_l, u_l, f_0
        norm = z_norm == "batch"
        self.top = nn.Sequential(
            fc_bn(self.z_dims[-1], hidden, nn.ReLU(), norm), fc_bn(hidden, hidden, nn.ReLU())
        )
        self.noise = nn.ModuleList(
            latent_to_features(self.z_dims[i], S[i + 2], norm) for i in range(L - 1)
        )
        gated = combine == "gated"
        self.gates = nn.ModuleList(GatedAdd(S[i + 2]) for i in range(L - 1)) if gated else None
        self.generative = nn.ModuleList(
            decoder_stage(arch.levels[i + 1], S[i + 1], concat=not gated) for i in range(L - 1)
        )
        self.output = decoder_stage(arch.levels[0], S[0], concat=False, out_channels=self.out_channels)
        self.register_buffer("layer_gates", torch.ones(L))
        self.init_weights()

    # ------------------------------------------------------------ networks
    @staticmethod
    def check_kl_weights(kl_weights: Sequence[float], num_layers: int) -> tuple[float, ...]:
        """``kl_weights`` as floats, or :class:`ConfigError` unless there is one positive
        weight per layer."""
        weights = tuple(float(w) for w in kl_weights)
        if len(weights) != num_layers or not all(math.isfinite(w) and w > 0 for w in weights):
            raise ConfigError(
                f"kl_weights needs one positive weight per layer ({num_layers}), got {list(weights)}",
                "e.g. --kl-weights " + ",".join(["1"] * num_layers),
            )
        return weights

    @torch.no_grad()
    def set_layer_gates(self, gates: Tensor) -> None:
        """Multiply each layer's path v_l(z_l) by its gate (in place: a compiled step reads
        the buffer ``layer_gates`` as it is)."""
        self.layer_gates.copy_(gates)

    def encode(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """(μ_l, σ_l) of q(z_l | x) for l = 1..L (eqs. 12–13)."""
        return bottom_up(self.inference, self.ladder, x)

    def decode(self, zs: Sequence[Tensor]) -> Tensor:
        """The likelihood's parameters f_0(z̃_1) from z = (z1..zL) (eqs. 8–11)."""
        h = self.top(zs[-1])
        for i in reversed(range(self.num_layers - 1)):
            v = self.noise[i](zs[i]) * self.layer_gates[i]
            channels = -len(self.arch.shapes[i + 2])  # features (*batch, C, ...): join along C
            h = self.gates[i](h, v) if self.gates is not None else torch.cat([h, v], dim=channels)
            h = self.generative[i](h)
        return self.output(h)

    # ---------------------------------------------------------- model/guide
    @latent_method
    def model(self, x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        """p(x, z) = r(x; f_0(z̃_1)) Π_l N(z_l; 0, I); returns r(x; f_0(z̃_1))."""
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        with plate:
            with kl_weight(beta):
                zs = []
                for i, (name, d) in enumerate(zip(self.latent_sites, self.z_dims)):
                    with self._layer_weight(i):
                        zs.append(pyro.sample(name, dist.Normal(self._zero, 1.0).expand([batch, d]).to_event(1)))
            likelihood = self.likelihood(self.decode(zs))
            pyro.sample("x", likelihood, obs=x)
        return likelihood

    @latent_method
    def guide(self, x, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        """q(z | x) = Π_l N(z_l; μ_l(h_l), σ_l(h_l)), a mean-field posterior."""
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        with plate, kl_weight(beta):
            zs = []
            for i, (name, (loc, scale)) in enumerate(zip(self.latent_sites, self.encode(x))):
                with self._layer_weight(i):
                    zs.append(pyro.sample(name, dist.Normal(loc, scale).to_event(1)))
            return zs

    def _layer_weight(self, i: int) -> poutine.scale | nullcontext:
        """``poutine.scale`` by layer i's KL weight, in model and guide alike, so the KL term
        of z_{i+1} is weighted by it (nothing when the weight is 1)."""
        w = self.kl_weights[i]
        return nullcontext() if w == 1.0 else poutine.scale(scale=w)
