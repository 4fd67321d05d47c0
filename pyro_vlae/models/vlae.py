"""The variational ladder autoencoder (Zhao, Song & Ermon, ICML 2017, section 4.1)."""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.nn import pyro_method
from torch import Tensor, nn

from ..likelihoods import Likelihood
from ..nets.blocks import GaussianHead, fc_bn
from ..nets.ladder import decoder_stage, encoder_stage, latent_to_features
from .base import LadderModel


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

    Parameters as :class:`~pyro_vlae.models.base.LadderModel`.
    """

    def __init__(
        self,
        x_shape: Sequence[int],
        z_dims: Sequence[int] = (2, 2, 2),
        likelihood: Likelihood | None = None,
        stem: str = "auto",
        width: float = 1.0,
    ) -> None:
        super().__init__(x_shape, z_dims, likelihood, stem, width)
        arch = self.arch
        S, L = arch.shapes, self.num_layers
        # inference: g_l and the ladder heads (μ_l, σ_l)
        self.inference = nn.ModuleList(encoder_stage(arch.levels[i], S[i]) for i in range(L))
        self.ladder = nn.ModuleList(GaussianHead(S[i + 1], self.z_dims[i]) for i in range(L))
        # generative: f_L, v_l, u_l, f_0
        hidden = S[L][0]
        self.top = nn.Sequential(
            fc_bn(self.z_dims[-1], hidden, nn.ReLU()), fc_bn(hidden, hidden, nn.ReLU())
        )
        self.noise = nn.ModuleList(
            latent_to_features(self.z_dims[i], S[i + 2]) for i in range(L - 1)
        )
        self.generative = nn.ModuleList(
            decoder_stage(arch.levels[i + 1], S[i + 1], concat=True) for i in range(L - 1)
        )
        self.output = decoder_stage(arch.levels[0], S[0], concat=False, out_channels=self.out_channels)
        self.init_weights()

    # ------------------------------------------------------------ networks
    def encode(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """(μ_l, σ_l) of q(z_l | x) for l = 1..L (eqs. 12–13)."""
        h, params = x, []
        for g, head in zip(self.inference, self.ladder):
            h = g(h)
            params.append(head(h))
        return params

    def decode(self, zs: Sequence[Tensor]) -> Tensor:
        """The likelihood's parameters f_0(z̃_1) from z = (z1..zL) (eqs. 8–11)."""
        h = self.top(zs[-1])
        for i in reversed(range(self.num_layers - 1)):
            h = self.generative[i](torch.cat([h, self.noise[i](zs[i])], dim=1))
        return self.output(h)

    # ---------------------------------------------------------- model/guide
    @pyro_method
    def model(self, x=None, *, num_samples=None, num_data=None, beta=1.0):
        """p(x, z) = r(x; f_0(z̃_1)) Π_l N(z_l; 0, I)."""
        batch = self._batch_size(x, num_samples)
        with self.data_plate(batch, num_data):
            with poutine.scale(scale=beta):
                zs = [
                    pyro.sample(
                        name,
                        dist.Normal(self._zero, 1.0).expand([batch, d]).to_event(1),
                    )
                    for name, d in zip(self.latent_sites, self.z_dims)
                ]
            return pyro.sample("x", self.likelihood(self.decode(zs)), obs=x)

    @pyro_method
    def guide(self, x, *, num_samples=None, num_data=None, beta=1.0):
        """q(z | x) = Π_l N(z_l; μ_l(h_l), σ_l(h_l)), a mean-field posterior."""
        batch = self._batch_size(x, None)
        with self.data_plate(batch, num_data), poutine.scale(scale=beta):
            return [
                pyro.sample(name, dist.Normal(loc, scale).to_event(1))
                for name, (loc, scale) in zip(self.latent_sites, self.encode(x))
            ]
