"""The Markov hierarchical VAE, the paper's baseline (section 3, appendix B.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pyro
import pyro.distributions as dist
from pyro import poutine
from pyro.nn import pyro_method
from torch import nn

from ..likelihoods import Likelihood
from ..nets.blocks import GaussianHead
from ..nets.ladder import encoder_stage, latent_to_features
from .base import DEFAULT_Z_DIMS
from .markov import MarkovHierarchy


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
    would ignore that dependence and optimise a wrong objective.

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
    ) -> None:
        super().__init__(x_shape, z_dims, likelihood, stem, width)
        S, L = self.arch.shapes, self.num_layers
        self.inference = nn.ModuleList(encoder_stage(self.arch.levels[i], S[i]) for i in range(L))
        self.lift = nn.ModuleList(latent_to_features(self.z_dims[i], S[i + 1]) for i in range(L - 1))
        self.ladder = nn.ModuleList(GaussianHead(S[i + 1], self.z_dims[i]) for i in range(L))
        self.init_weights()

    @pyro_method
    def guide(self, x, *, num_samples=None, num_data=None, beta=1.0):
        """q(z | x) = q(z_1 | x) Π_l q(z_l | z_{l-1}), sampled bottom-up."""
        batch = self._batch_size(x, None)
        sites = self.latent_sites
        with self.data_plate(batch, num_data), poutine.scale(scale=beta):
            h = x
            zs = []
            for i in range(self.num_layers):
                if i > 0:
                    h = self.lift[i - 1](zs[-1])
                loc, scale = self.ladder[i](self.inference[i](h))
                zs.append(pyro.sample(sites[i], dist.Normal(loc, scale).to_event(1)))
            return zs
