"""What every pyro-vlae model shares: latent sites ``z1..zL``, observation site ``x``."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import pyro
import torch
from pyro import poutine
from pyro.distributions.kl import kl_divergence
from pyro.infer.reparam import LocScaleReparam
from pyro.nn import PyroModule, pyro_method
from torch import Tensor

from ..errors import ConfigError, DataError
from ..likelihoods import Gaussian, Likelihood
from ..nets.blocks import init_weights
from ..nets.ladder import architecture

#: ELBO estimators (``--elbo``): Pyro's Trace_ELBO and TraceMeanField_ELBO
ELBOS = ("trace", "meanfield")
#: widths of z1..zL when none are given: three layers of 2-D codes
DEFAULT_Z_DIMS = (2, 2, 2)


def check_z_dims(z_dims: Sequence[int]) -> tuple[int, ...]:
    """``z_dims`` as a tuple of ints, or :class:`ConfigError` unless it is a non-empty list of
    positive widths (one per latent layer)."""
    try:
        dims = tuple(int(d) for d in z_dims)
    except (TypeError, ValueError):
        dims = ()
    if not dims or min(dims) < 1:
        raise ConfigError(
            f"z_dims must be a non-empty list of positive widths, got {tuple(z_dims)}",
            "e.g. --z-dims 2,2,2 for three layers of 2-D codes",
        )
    return dims


class _AbstractPyroModule(type(PyroModule), ABCMeta):
    """PyroModule's metaclass with abstract methods."""


class LatentModel(PyroModule, metaclass=_AbstractPyroModule):
    """Base class of the Pyro model/guide pairs.

    Subclasses implement :meth:`model` and :meth:`guide` with the signature
    ``(x=None, *, num_samples=None, num_data=None, beta=1.0)``:

    * ``x``: a batch of data ``(B, *x_shape)``; ``model()`` without it generates
      ``num_samples`` data points by ancestral sampling.
    * ``num_data``: size of the full data set; the ``"data"`` plate then scales the batch's
      log-densities by ``num_data / B`` so the ELBO of a mini-batch estimates the full one.
    * ``beta``: KL warm-up weight (``poutine.scale`` on the latent sites of both model and
      guide); it must be positive, β = 1 is the ELBO.

    Sample sites are ``z1`` (nearest to x) … ``zL`` and ``x``, inside ``pyro.plate("data")``.

    :param x_shape: shape of one data point, ``(D,)`` or ``(C, H, W)``.
    :param z_dims: width of each latent layer, ``z_dims[0]`` for ``z1``.
    :param likelihood: the decoder likelihood r (default: fixed-variance Gaussian).
    """

    #: ELBO estimators that are valid for this model/guide pair (see :meth:`check_elbo`)
    supported_elbos: ClassVar[tuple[str, ...]] = ELBOS

    def __init__(
        self,
        x_shape: Sequence[int],
        z_dims: Sequence[int],
        likelihood: Likelihood | None = None,
    ) -> None:
        super().__init__()
        self.x_shape = tuple(int(s) for s in x_shape)
        self.z_dims = check_z_dims(z_dims)
        if not self.x_shape or min(self.x_shape) < 1:
            raise ConfigError(f"invalid data shape {self.x_shape}")
        self.likelihood = likelihood if likelihood is not None else Gaussian()
        self.likelihood.bind(self.x_shape)
        self.register_buffer("_zero", torch.zeros(()))

    # ------------------------------------------------------------------ sites
    @property
    def num_layers(self) -> int:
        return len(self.z_dims)

    @property
    def latent_sites(self) -> tuple[str, ...]:
        """``("z1", ..., "zL")``, z1 nearest to the data."""
        return tuple(f"z{i + 1}" for i in range(self.num_layers))

    @property
    def gibbs_sites(self) -> tuple[str, ...]:
        """The latent sites x depends on directly, which the Gibbs chain of Proposition 1
        re-draws: every layer here, only ``z1`` for a Markov hierarchy."""
        return self.latent_sites

    @property
    def device(self) -> torch.device:
        return self._zero.device

    @property
    def out_channels(self) -> int:
        """Decoder outputs along dim 1: data channels (or features) × the likelihood's k."""
        return self.likelihood.num_params(self.x_shape[0])

    # ---------------------------------------------------------------- helpers
    def _batch_size(self, x: Tensor | None, num_samples: int | None) -> int:
        if x is not None:
            self.check_shape(x)
            return x.shape[0]
        if num_samples is None or num_samples < 1:
            raise ConfigError(
                "model() without data needs num_samples >= 1",
                "call model(num_samples=N) to generate N data points",
            )
        return int(num_samples)

    def data_plate(self, batch_size: int, num_data: int | None = None) -> pyro.plate:
        """``pyro.plate("data")`` over the batch, scaled to ``num_data`` when sub-sampled."""
        if num_data is None or num_data == batch_size:
            return pyro.plate("data", batch_size, dim=-1)
        if num_data < batch_size:
            raise ConfigError(
                f"num_data={num_data} is smaller than the batch size {batch_size}",
                "pass the size of the whole data set as num_data",
            )
        return pyro.plate("data", num_data, subsample=torch.arange(batch_size), dim=-1)

    def check_shape(self, x: Tensor) -> None:
        if tuple(x.shape[1:]) != self.x_shape or x.dim() != len(self.x_shape) + 1:
            raise DataError(
                f"expected a batch of shape (B, {', '.join(map(str, self.x_shape))}), "
                f"got {tuple(x.shape)}",
                "pass data shaped like the data set the model was built for",
            )

    def check_elbo(self, name: str) -> None:
        """Refuse an ELBO estimator that would optimise the wrong objective for this model."""
        if name not in self.supported_elbos:
            raise ConfigError(
                f"{type(self).__name__} does not support the {name!r} ELBO",
                f"use one of: {', '.join(self.supported_elbos)}",
            )

    def check_data(self, x: Tensor) -> None:
        """Validate data once, before training: shape, finiteness, range, likelihood support."""
        self.check_shape(x)
        self.likelihood.check(x)

    # ------------------------------------------------------------ model/guide
    @abstractmethod
    def model(self, x=None, *, num_samples=None, num_data=None, beta=1.0) -> Tensor:
        """The generative model p(x, z): samples ``z1..zL`` and ``x`` (observed when given)."""

    def forward(self, x: Tensor | None = None, **kwargs) -> Tensor:
        """Alias of :meth:`model`, so the module itself is a Pyro model."""
        return self.model(x, **kwargs)

    # ------------------------------------------------------- conveniences
    @pyro_method
    def traces(self, x: Tensor) -> tuple[poutine.Trace, poutine.Trace]:
        """One guide trace on ``x`` and the model trace replayed against it."""
        guide_trace = poutine.trace(self.guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(self.model, trace=guide_trace)).get_trace(x)
        return guide_trace, model_trace

    @torch.no_grad()
    def elbo_terms(
        self, x: Tensor, traces: tuple[poutine.Trace, poutine.Trace] | None = None
    ) -> dict[str, Tensor]:
        """Per-data-point terms of the ELBO (eq. 2), one posterior sample:

        ``recon`` = log p(x | z) and ``kl`` = per-layer KL(q ‖ p) of shape (B, L), analytic
        where Pyro knows it (conditionally on the sampled parents for Markov chains),
        otherwise the single-sample estimate log q − log p. ``traces``: the guide and model
        traces of :meth:`traces` on ``x``, when the caller has them already.
        """
        guide_trace, model_trace = self.traces(x) if traces is None else traces
        kls = []
        for name in self.latent_sites:
            q, p = guide_trace.nodes[name], model_trace.nodes[name]
            try:
                kls.append(kl_divergence(q["fn"], p["fn"]))
            except NotImplementedError:
                kls.append(q["fn"].log_prob(q["value"]) - p["fn"].log_prob(q["value"]))
        recon = model_trace.nodes["x"]["fn"].log_prob(x)
        return {"recon": recon, "kl": torch.stack(kls, dim=-1)}

    @torch.no_grad()
    def generate(
        self, num_samples: int, fixed: dict[str, Tensor] | None = None, noise: dict[str, Tensor] | None = None
    ) -> Tensor:
        """The likelihood's mean at ``num_samples`` ancestral samples; layers named in
        ``fixed`` (e.g. ``{"z3": code}``) are conditioned to the given values.

        ``noise`` fixes the standard-normal noise ε_l of the reparameterisation
        z_l = μ_l + σ_l ⊙ ε_l (the paper's eq. 15) instead of z_l itself: each named site is
        rewritten by :class:`~pyro.infer.reparam.LocScaleReparam` into a site
        ``"{name}_decentered"`` that is conditioned to the given ε. For a layer with an
        N(0, I) prior, ε_l is z_l."""
        model = self.model
        if noise:
            model = poutine.condition(model, data={f"{name}_decentered": eps for name, eps in noise.items()})
            model = poutine.reparam(model, config={name: LocScaleReparam(centered=0.0) for name in noise})
        if fixed:
            model = poutine.condition(model, data=fixed)
        trace = poutine.trace(model).get_trace(num_samples=num_samples)
        return trace.nodes["x"]["fn"].mean

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """The likelihood's mean at one posterior sample z ~ q(z | x)."""
        return self.traces(x)[1].nodes["x"]["fn"].mean

    @torch.no_grad()
    def sample_latents(self, x: Tensor) -> dict[str, Tensor]:
        """One draw of each latent layer from the guide."""
        trace = poutine.trace(self.guide).get_trace(x)
        return {name: trace.nodes[name]["value"] for name in self.latent_sites}

    # ------------------------------------------------------------ training schedule
    def set_layer_gates(self, gates: Tensor) -> None:
        """Switch each layer's ladder path on by its gate in [0, 1] (z1 first): a fade-in
        (:class:`~pyro_vlae.train.LayerFadeIn`) calls it before every training step. A model
        without ladder paths has nothing to fade in and refuses."""
        raise ConfigError(
            f"{type(self).__name__} has no ladder paths to fade in", "drop the fade-in (it is for the VLAE)"
        )


class LadderModel(LatentModel):
    """A :class:`LatentModel` whose networks are the ladder levels of
    :func:`~pyro_vlae.nets.ladder.architecture`: the VLAE and the baselines built from the
    same levels, so that a comparison changes the model and not the networks.

    Subclasses build their networks from :attr:`arch` and end their ``__init__`` with
    :meth:`init_weights`.

    :param x_shape: shape of one data point, ``(D,)`` or ``(C, H, W)``.
    :param z_dims: widths of z1..zL; their number L sets the depth of the ladder.
    :param likelihood: the decoder likelihood r; default a fixed-variance Gaussian.
    :param stem: ``"auto"`` (from ``x_shape``), ``"mlp"``, ``"small"``, ``"medium"``, ``"large"``.
    :param width: multiplier on every channel count and dense width (1 = the authors').
    """

    def __init__(
        self,
        x_shape: Sequence[int],
        z_dims: Sequence[int] = DEFAULT_Z_DIMS,
        likelihood: Likelihood | None = None,
        stem: str = "auto",
        width: float = 1.0,
    ) -> None:
        z_dims = check_z_dims(z_dims)
        super().__init__(x_shape, self.latent_dims(z_dims), likelihood)
        self.arch = architecture(self.x_shape, len(z_dims), stem, width)

    @staticmethod
    def latent_dims(z_dims: tuple[int, ...]) -> tuple[int, ...]:
        """Widths of the latent sites for ``z_dims`` (one site per entry here)."""
        return z_dims

    def init_weights(self) -> None:
        """The authors' initialisation (:func:`~pyro_vlae.nets.blocks.init_weights`) of every network."""
        self.apply(init_weights)
