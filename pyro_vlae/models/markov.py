"""The generative model shared by the stacked hierarchies HVAE and LVAE (paper eqs. 3–5)."""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
from torch import Tensor, nn

from ..likelihoods import Likelihood
from ..nets.blocks import GaussianHead, fc_bn
from ..nets.ladder import decoder_stage, latent_to_features
from .base import DEFAULT_Z_DIMS, LadderModel, kl_weight, latent_method


class MarkovHierarchy(LadderModel):
    r"""A Markov chain of latent layers, the paper's hierarchical VAE (eqs. 3–4)::

        p(x, z) = p(z_L) Π_{l<L} p(z_l | z_{l+1}) p(x | z_1)
        p(z_L) = N(0, I)
        p(z_l | z_{l+1}) = N(W_1 f_l(z_{l+1}), sigm(W_2 f_l(z_{l+1}))²)    (appendix B.1)
        x ~ r(x; f_0(z_1))

    The networks are the VLAE's ladder levels (``pyro_vlae.nets.ladder``) arranged as a
    chain: ``f_l`` embeds z_{l+1} into the features of level l+1 (two dense layers at the
    top, one dense layer + reshape below) and applies the transposed stage u_{l+1}; ``W_1``,
    ``W_2`` are the linear heads (σ = sigmoid(·) + 0.001). ``f_0`` is the transposed first
    stage. With the ``small`` stem (28×28) this is appendix B.1 exactly: ``f_0`` a two-layer
    convolutional network with stride 1/2, ``f_1``, ``f_2`` two-layer dense networks;
    on the other stems a level can be convolutional, which keeps the parameter count equal
    to the VLAE's at the same ``z_dims``. Subclasses supply the guide.

    Sample sites run from the top, ``zL`` … ``z1``, then ``x``. Only ``z1`` reaches ``x``,
    so the Gibbs chain of Proposition 1 uses ``z1`` alone (:attr:`gibbs_sites`).

    Parameters as :class:`~pyro_vlae.models.base.LadderModel`.
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
        S, L = arch.shapes, self.num_layers
        hidden = S[L][0]
        # z_l → features S_l of level l (index l-1); the top takes two dense layers as VLAE's f_L
        self.embed = nn.ModuleList(latent_to_features(self.z_dims[i], S[i + 1]) for i in range(L - 1))
        self.embed.append(
            nn.Sequential(fc_bn(self.z_dims[-1], hidden, nn.ReLU()), fc_bn(hidden, hidden, nn.ReLU()))
        )
        # u_{l+1}: S_{l+1} → S_l and the heads W_1, W_2 of p(z_l | z_{l+1}) (index l-1)
        self.generative = nn.ModuleList(
            decoder_stage(arch.levels[i + 1], S[i + 1], concat=False) for i in range(L - 1)
        )
        self.prior = nn.ModuleList(GaussianHead(S[i + 1], self.z_dims[i]) for i in range(L - 1))
        self.output = decoder_stage(arch.levels[0], S[0], concat=False, out_channels=self.out_channels)

    @property
    def gibbs_sites(self) -> tuple[str, ...]:
        """Only z1 is a parent of x."""
        return ("z1",)

    def conditional(self, layer: int, z_above: Tensor) -> tuple[Tensor, Tensor]:
        """(loc, scale) of p(z_layer | z_{layer+1}) for ``layer`` in 1..L-1."""
        i = layer - 1
        return self.prior[i](self.generative[i](self.embed[i + 1](z_above)))

    def decode(self, z1: Tensor) -> Tensor:
        """The likelihood's parameters f_0(z_1)."""
        return self.output(self.embed[0](z1))

    @latent_method
    def model(self, x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        """p(x, z) = p(z_L) Π_l p(z_l | z_{l+1}) r(x; f_0(z_1)) (eq. 4), sampled top-down;
        returns r(x; f_0(z_1))."""
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        sites = self.latent_sites
        with plate:
            with kl_weight(beta):
                z = pyro.sample(sites[-1], dist.Normal(self._zero, 1.0).expand([batch, self.z_dims[-1]]).to_event(1))
                for layer in reversed(range(1, self.num_layers)):
                    loc, scale = self.conditional(layer, z)
                    z = pyro.sample(sites[layer - 1], dist.Normal(loc, scale).to_event(1))
            likelihood = self.likelihood(self.decode(z))
            pyro.sample("x", likelihood, obs=x)
        return likelihood
