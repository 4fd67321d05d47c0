"""The flat VAE: one latent layer, the reference point of every comparison."""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
from torch import Tensor, nn

from ..likelihoods import Likelihood
from ..nets.blocks import GaussianHead, fc_bn
from ..nets.ladder import decoder_stage, encoder_stage
from .base import DEFAULT_Z_DIMS, LadderModel, kl_weight, latent_method


class VAE(LadderModel):
    r"""A VAE with one latent layer z1 of width ``sum(z_dims)`` (Kingma & Welling, 2014)::

        p(x, z) = N(z; 0, I) r(x; f(z)),    q(z | x) = N(μ(g(x)), σ(g(x)))

    ``g`` is the VLAE's whole inference ladder g_L ∘ … ∘ g_1 and ``f`` its generative
    ladder u_1 ∘ … ∘ u_{L-1} ∘ f_L without the side inputs, for L = ``len(z_dims)``: the
    same stem, depth and code size as the hierarchical models at the same ``z_dims``, with
    the whole code at the top. ``z_dims=(3, 3, 3)`` gives one 9-dimensional layer.

    Parameters as :class:`~pyro_vlae.models.base.LadderModel`; ``z_dims``: widths whose sum
    is the width of z1, their number sets the depth.
    """

    def __init__(
        self,
        x_shape: Sequence[int],
        z_dims: Sequence[int] = DEFAULT_Z_DIMS,
        likelihood: Likelihood | None = None,
        stem: str = "auto",
        width: float = 1.0,
        name: str | None = None,
    ) -> None:
        super().__init__(x_shape, z_dims, likelihood, stem, width, name)
        arch = self.arch
        S, L = arch.shapes, arch.num_layers
        z_dim, hidden = self.z_dims[0], S[L][0]
        self.encoder = nn.Sequential(*(encoder_stage(arch.levels[i], S[i]) for i in range(L)))
        self.head = GaussianHead(S[L], z_dim)
        self.decoder = nn.Sequential(
            fc_bn(z_dim, hidden, nn.ReLU()),
            fc_bn(hidden, hidden, nn.ReLU()),
            *(decoder_stage(arch.levels[i], S[i], concat=False) for i in reversed(range(1, L))),
            decoder_stage(arch.levels[0], S[0], concat=False, out_channels=self.out_channels),
        )
        self.init_weights()

    @staticmethod
    def latent_dims(z_dims: tuple[int, ...]) -> tuple[int, ...]:
        """One site z1 holding the whole code."""
        return (sum(z_dims),)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(μ, σ) of q(z | x)."""
        return self.head(self.encoder(x))

    @latent_method
    def model(self, x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        """p(x, z) = N(z; 0, I) r(x; f(z)); returns r(x; f(z))."""
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        with plate:
            with kl_weight(beta):
                z = pyro.sample("z1", dist.Normal(self._zero, 1.0).expand([batch, self.z_dims[0]]).to_event(1))
            likelihood = self.likelihood(self.decoder(z))
            pyro.sample("x", likelihood, obs=x)
        return likelihood

    @latent_method
    def guide(self, x, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        """q(z | x) = N(μ(g(x)), σ(g(x)))."""
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        loc, scale = self.encode(x)
        with plate, kl_weight(beta):
            return pyro.sample("z1", dist.Normal(loc, scale).to_event(1))
