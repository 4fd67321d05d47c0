"""The ladder VAE (Sønderby et al., NeurIPS 2016): top-down inference with precision-weighted merges."""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
from torch import Tensor, nn

from ..likelihoods import Likelihood
from ..nets.blocks import GaussianHead
from ..nets.ladder import bottom_up, encoder_stage
from .base import DEFAULT_Z_DIMS, kl_weight, latent_method
from .markov import MarkovHierarchy


def precision_weighted(loc_hat: Tensor, scale_hat: Tensor, loc_p: Tensor, scale_p: Tensor) -> tuple[Tensor, Tensor]:
    r"""Merge a bottom-up Gaussian N(μ̂, σ̂²) with the top-down N(μ_p, σ_p²) (LVAE eqs. 18–19)::

        σ_q² = 1 / (σ̂⁻² + σ_p⁻²)
        μ_q  = (μ̂ σ̂⁻² + μ_p σ_p⁻²) σ_q²

    Takes and returns standard deviations (not variances). The result is the normalised
    product of the two densities.
    """
    precision_hat, precision_p = scale_hat.pow(-2), scale_p.pow(-2)
    variance = 1.0 / (precision_hat + precision_p)
    return (loc_hat * precision_hat + loc_p * precision_p) * variance, variance.sqrt()


class LVAE(MarkovHierarchy):
    r"""Ladder VAE: the HVAE's generative model (:class:`MarkovHierarchy`) with inference
    that runs bottom-up deterministically, then top-down stochastically::

        d_l = g_l(d_{l-1}),  d_0 = x                      g_l: the VLAE's inference stages
        (μ̂_l, σ̂_l) = heads(d_l)
        q(z_L | x) = N(μ̂_L, σ̂_L²)
        q(z_l | z_{l+1}, x) = N(μ_q, σ_q²),  (μ_q, σ_q) = merge((μ̂_l, σ̂_l), p(z_l | z_{l+1}))

    The top-down pass reuses the generative conditionals p(z_l | z_{l+1}) (parameter sharing
    between the inference and generative top-down paths, as in the paper); the merge is
    :func:`precision_weighted`. Batch norm sits in every stage; use the trainer's KL
    warm-up as the paper does. σ̂ = sigmoid(·) + 0.001 like every other head in the library
    (the authors' code used a softplus variance).

    The guide draws z_L … z_1 in the model's order, and every model parent (z_{l+1}) of
    z_l is an ancestor, not a descendant, of z_l in the guide, so ``TraceMeanField_ELBO``
    (analytic KL, conditional on the sampled parent) is valid as well as ``Trace_ELBO``.

    Same parameters as :class:`MarkovHierarchy`.
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
        S = self.arch.shapes
        self.inference = nn.ModuleList(encoder_stage(self.arch.levels[i], S[i]) for i in range(self.num_layers))
        self.ladder = nn.ModuleList(GaussianHead(S[i + 1], self.z_dims[i]) for i in range(self.num_layers))
        self.init_weights()

    def bottom_up(self, x: Tensor) -> list[tuple[Tensor, Tensor]]:
        """(μ̂_l, σ̂_l) for l = 1..L from the deterministic pass d_l = g_l(d_{l-1})."""
        return bottom_up(self.inference, self.ladder, x)

    @latent_method
    def guide(self, x, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        """q(z | x) = q(z_L | x) Π_l q(z_l | z_{l+1}, x), sampled top-down."""
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        sites = self.latent_sites
        ladder = self.bottom_up(x)
        with plate, kl_weight(beta):
            loc, scale = ladder[-1]
            z = pyro.sample(sites[-1], dist.Normal(loc, scale).to_event(1))
            zs = [z]
            for i in reversed(range(self.num_layers - 1)):
                loc, scale = precision_weighted(*ladder[i], *self.conditional(i + 1, z))
                z = pyro.sample(sites[i], dist.Normal(loc, scale).to_event(1))
                zs.insert(0, z)
            return zs
