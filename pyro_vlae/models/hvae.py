"""The Markov hierarchical VAE, the paper's baseline (section 3, appendix B.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pyro
import pyro.distributions as dist
from pyro.distributions.kl import register_kl
from torch import nn

from ..errors import ConfigError
from ..likelihoods import Likelihood
from ..nets.blocks import GaussianHead
from ..nets.ladder import encoder_stage, latent_to_features
from .base import DEFAULT_Z_DIMS, kl_weight, latent_method
from .markov import MarkovHierarchy


class BottomUpNormal(dist.Normal):
    """q(z_l | x) of the HVAE's guide for a layer l < L, whose model density p(z_l | z_{l+1})
    conditions on a layer the guide draws *after* z_l: no analytic KL term pairs with it."""


@register_kl(BottomUpNormal, dist.Normal)
def _refuse_analytic_kl(q: BottomUpNormal, p: dist.Normal):
    """Refuse the analytic KL(q(z_l | x) ‖ p(z_l | z_{l+1})) that mean-field ELBOs
    (``TraceMeanField_ELBO``) would use: taken at a z_{l+1} drawn from z_l, it ignores that
    dependence and optimises a wrong objective."""
    raise ConfigError(
        "the HVAE's guide draws z_l before the z_{l+1} its model conditions z_l on, so the "
        "analytic KL terms of a mean-field ELBO (TraceMeanField_ELBO) are wrong for it",
        "train the HVAE with Trace_ELBO (or use the LVAE, whose top-down guide allows TraceMeanField_ELBO)",
    )


class HVAE(MarkovHierarchy):
    r"""Hierarchical VAE: Markov generative model, Markov bottom-up inference (eq. 5)::

        q(z | x) = q(z_1 | x) Π_{l>1} q(z_l | z_{l-1})
        q(z_1 | x) = N(μ_1(g_1(x)), σ_1(g_1(x)))
        q(z_l | z_{l-1}) = N(μ_l(g_l(b_l(z_{l-1}))), σ_l(g_l(b_l(z_{l-1}))))

    "For inference we use the same architecture as the generator" (appendix B.1): g_l are
    the VLAE's inference stages, b_l embeds z_{l-1} into level l-1's features (dense + BN +
    ReLU + reshape), μ_l, σ_l the linear heads. The generative model is
    :class:`MarkovHierarchy`'s.

    Only ``Trace_ELBO`` is valid. ``TraceMeanField_ELBO`` requires that no model parent of a
    latent is a descendant of it in the guide; here the model's p(z_1 | z_2) conditions on
    z_2, which the guide draws *from* z_1, so the analytic terms E_q KL(q(z_1|x) ‖ p(z_1|z_2))
    would ignore that dependence and optimise a wrong objective. The guide's z_1..z_{L-1}
    are :class:`BottomUpNormal`s: a mean-field ELBO asking for their analytic KL term gets a
    :class:`~pyro_vlae.errors.ConfigError` instead.

    Same parameters as :class:`MarkovHierarchy`.
    """

    supported_elbos: ClassVar[tuple[str, ...]] = ("trace",)

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
        S, L = self.arch.shapes, self.num_layers
        self.inference = nn.ModuleList(encoder_stage(self.arch.levels[i], S[i]) for i in range(L))
        self.lift = nn.ModuleList(latent_to_features(self.z_dims[i], S[i + 1]) for i in range(L - 1))
        self.ladder = nn.ModuleList(GaussianHead(S[i + 1], self.z_dims[i]) for i in range(L))
        self.init_weights()

    @latent_method
    def guide(self, x, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        """q(z | x) = q(z_1 | x) Π_l q(z_l | z_{l-1}), sampled bottom-up."""
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        sites = self.latent_sites
        with plate, kl_weight(beta):
            h = x
            zs = []
            for i in range(self.num_layers):
                if i > 0:
                    h = self.lift[i - 1](zs[-1])
                loc, scale = self.ladder[i](self.inference[i](h))
                q = BottomUpNormal(loc, scale) if i < self.num_layers - 1 else dist.Normal(loc, scale)
                zs.append(pyro.sample(sites[i], q.to_event(1)))
            return zs
