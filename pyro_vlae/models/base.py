"""What every pyro-vlae model shares: latent sites ``z1..zL``, observation site ``x``."""

from __future__ import annotations

import contextlib
import functools
import itertools
import weakref
from abc import ABCMeta, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import ClassVar

import pyro
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.distributions.kl import kl_divergence
from pyro.infer.reparam import LocScaleReparam
from pyro.nn import PyroModule, pyro_method
from pyro.params.param_store import param_with_module_name
from pyro.poutine.runtime import get_plates
from pyro.poutine.util import is_validation_enabled
from torch import Tensor, nn

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


#: the name of the models' data plate; a user's ``pyro.plate`` of this name is joined
DATA_PLATE = "data"

_instances: defaultdict[str, itertools.count] = defaultdict(itertools.count)


def default_name(cls: type) -> str:
    """A name for a new model of class ``cls`` that no earlier model of this process has:
    ``"vlae"``, then ``"vlae_1"``, ``"vlae_2"``, …"""
    k = next(_instances[cls.__name__])
    return cls.__name__.lower() if k == 0 else f"{cls.__name__.lower()}_{k}"


def named_store_params(module: PyroModule) -> list[tuple[str, nn.Parameter, constraints.Constraint]]:
    """``module``'s parameters under the names its param statements give them in Pyro's
    param store, with their constraints: a :class:`~pyro.nn.PyroModule`'s own parameter
    ``name`` as ``prefix.name`` (a :class:`~pyro.nn.PyroParam` with its constraint), a plain
    submodule's as :func:`pyro.module` names them (``prefix.child$$$path``)."""

    def full(name: str) -> str:
        return f"{module._pyro_name}.{name}" if module._pyro_name else name

    named = []
    for name, p in module.named_parameters(recurse=False):
        base = name.removesuffix("_unconstrained")
        if base != name and base in module._pyro_params:
            named.append((full(base), p, module._pyro_params[base][0]))
        else:
            named.append((full(name), p, constraints.real))
    for name, child in module.named_children():
        if isinstance(child, PyroModule):
            named += named_store_params(child)
        else:
            named += [(param_with_module_name(full(name), path), p, constraints.real)
                      for path, p in child.named_parameters()]
    return named


def kl_weight(beta: float | Tensor) -> contextlib.AbstractContextManager:
    """β on the latent sites of model and guide (KL warm-up, β-VAE): ``poutine.scale`` by β.

    β = 0 (a pure autoencoder, where a warm-up may start) masks the latent sites out of the
    objective instead, as Pyro's scale must be positive. A tensor β is a traced input of a
    JIT ELBO, so a changing β does not retrace; it is used as it is, without reading its value
    back from the device: with Pyro's validation off (as in the trainer's hot loop) it is the
    scale itself, so a zero tensor weighs the latent log-densities by 0; with validation on,
    where Pyro's scale refuses a zero tensor, a zero tensor is masked out as a float 0 is."""
    if not torch.is_tensor(beta):
        beta = float(beta)
        if not beta >= 0:
            raise ConfigError(f"beta must be >= 0, got {beta}", "pass the KL weight β as a number >= 0")
        if beta == 1.0:
            return contextlib.nullcontext()
        return poutine.mask(mask=False) if beta == 0 else poutine.scale(scale=beta)
    if not is_validation_enabled():
        return poutine.scale(scale=beta)
    stack = contextlib.ExitStack()
    positive = beta > 0
    stack.enter_context(poutine.mask(mask=positive))
    stack.enter_context(poutine.scale(scale=torch.where(positive, beta, torch.ones_like(beta))))
    return stack


def latent_method(fn: Callable) -> Callable:
    """:func:`~pyro.nn.pyro_method` for the model and guide of a :class:`LatentModel`: each
    call first lines the model's parameters up with Pyro's param store
    (:meth:`LatentModel.sync_param_store`)."""

    @functools.wraps(fn)
    def method(self: LatentModel, *args, **kwargs):
        self.sync_param_store()
        return fn(self, *args, **kwargs)

    return pyro_method(method)


class _AbstractPyroModule(type(PyroModule), ABCMeta):
    """PyroModule's metaclass with abstract methods."""


class LatentModel(PyroModule, metaclass=_AbstractPyroModule):
    """Base class of the Pyro model/guide pairs.

    Subclasses implement :meth:`model` and :meth:`guide` (decorated with
    :func:`latent_method`) with the signature
    ``(x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None)``:

    * ``x``: a batch of data ``(B, *x_shape)``, possibly with more batch dimensions on the
      left ``(..., B, *x_shape)`` (particles). ``model()`` without it generates data by
      ancestral sampling: ``batch_size`` points (default 1), or as many as the enclosing
      ``"data"`` plate holds.
    * ``beta``: KL warm-up weight on the latent sites of model and guide (:func:`kl_weight`);
      β = 1 is the ELBO, β = 0 a pure autoencoder. Positional, so a tensor β is an input of a
      JIT-traced ELBO.
    * the ``"data"`` plate (dim −1) holds the batch. The caller may own it: inside a
      ``pyro.plate("data", N, subsample_size=B)`` (or ``subsample=indices``) the model joins
      that plate, which scales the batch to ``N``. Otherwise the model opens it, over
      ``num_data`` points (the whole data set, default B) with the batch's indices
      ``subsample`` (default ``0..B-1``), so a mini-batch's ELBO estimates the full one and
      an :class:`~pyro.infer.autoguide.AutoNormal` updates the batch's own rows.

    Sample sites are ``z1`` (nearest to x) … ``zL`` and ``x``. :meth:`model` returns the
    likelihood r(x | z) at the sampled latents, a Pyro distribution: its ``mean`` is the
    picture to look at, ``sample()`` new data, ``log_prob(x)`` the reconstruction term.

    Parameters are registered in Pyro's param store under the model's ``name``
    (``"{name}.inference$$$0.0.weight"``, ...). A model built without a name gets one no
    earlier model of the process has (``"vlae"``, ``"vlae_1"``, ...), so models never share
    parameters by accident; models built with the same name share their values through the
    store, and a model reads values put there by ``pyro.get_param_store().load(path)`` when
    it next runs. The store holds parameters only: ``state_dict()`` also carries the
    buffers (batch-norm statistics, the VLAE's ``layer_gates``).

    :param x_shape: shape of one data point, ``(D,)`` or ``(C, H, W)``.
    :param z_dims: width of each latent layer, ``z_dims[0]`` for ``z1``.
    :param likelihood: the decoder likelihood r (default: fixed-variance Gaussian).
    :param name: prefix of the model's names in Pyro's param store (default: a new one).
    """

    #: ELBO estimators that are valid for this model/guide pair (see :meth:`check_elbo`)
    supported_elbos: ClassVar[tuple[str, ...]] = ELBOS

    def __init__(
        self,
        x_shape: Sequence[int],
        z_dims: Sequence[int],
        likelihood: Likelihood | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=default_name(type(self)) if name is None else name)
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
    def data_plate(
        self,
        x: Tensor | None,
        num_data: int | None = None,
        subsample: Tensor | None = None,
        batch_size: int | None = None,
    ) -> tuple[contextlib.AbstractContextManager, int]:
        """The ``"data"`` plate (dim −1) over the batch, and the batch size B, which
        :meth:`check_batch` accepts.

        Joins the caller's ``"data"`` plate when one is open (which then owns the data-set
        size and the indices); otherwise opens one over ``num_data`` points with the batch's
        indices ``subsample`` (default ``0..B-1``). B is x's size at the plate's dim, else
        the size of the caller's plate, of ``subsample``, or ``batch_size`` (default 1)."""
        plate, batch = self._plate(x, num_data, subsample, batch_size)
        self.check_batch(batch)
        return plate, batch

    def _plate(self, x, num_data, subsample, batch_size) -> tuple[contextlib.AbstractContextManager, int]:
        """:meth:`data_plate` without the batch check."""
        frames = get_plates()
        own = next((f for f in frames if f.name == DATA_PLATE), None)
        other = next((f for f in frames if f.dim == -1 and f.name != DATA_PLATE), None)
        if other is not None:
            raise ConfigError(
                f"the plate {other.name!r} takes dim -1, where {type(self).__name__} puts its "
                f"{DATA_PLATE!r} plate",
                f"name your plate over the data {DATA_PLATE!r} (the model joins it), or put other "
                f"plates further left, e.g. pyro.plate({other.name!r}, {other.size}, dim=-2)",
            )
        if own is not None:
            return contextlib.nullcontext(), self._joined_batch(x, own, num_data, subsample, batch_size)
        if subsample is not None:
            subsample = torch.as_tensor(subsample, device=self.device)
        sizes = {
            "x": None if x is None else self._rows(x),
            "subsample": None if subsample is None else len(subsample),
            "batch_size": batch_size,
        }
        given = {k: v for k, v in sizes.items() if v is not None}
        batch = next(iter(given.values()), 1)
        if len(set(given.values())) > 1 or batch < 1:
            raise ConfigError(
                "the batch size is given inconsistently: " + ", ".join(f"{k} {v}" for k, v in given.items()),
                "pass subsample with one index per data point of x (batch_size only to generate data)",
            )
        if num_data is None and subsample is None:
            return pyro.plate(DATA_PLATE, batch, dim=-1), batch
        if num_data is None or num_data < batch:
            raise ConfigError(
                f"num_data={num_data} cannot hold a batch of {batch}",
                "pass the size of the whole data set as num_data (with subsample, the batch's indices in it)",
            )
        if subsample is None:
            subsample = torch.arange(batch, device=self.device)
        # the plate's device is the indices' (else Pyro makes a tensor to find the default one)
        return pyro.plate(DATA_PLATE, num_data, subsample=subsample, dim=-1, device=subsample.device), batch

    def _joined_batch(self, x, frame, num_data, subsample, batch_size) -> int:
        """The batch size inside the caller's ``"data"`` plate ``frame``, checked."""
        if frame.dim != -1:
            raise ConfigError(
                f"the {DATA_PLATE!r} plate is at dim {frame.dim}; the model's data lie at dim -1",
                f"open it as pyro.plate({DATA_PLATE!r}, ..., dim=-1) and other plates further left",
            )
        if num_data is not None or subsample is not None:
            raise ConfigError(
                f"num_data and subsample belong to the {DATA_PLATE!r} plate the model joins",
                f"pass the data-set size and indices to your pyro.plate({DATA_PLATE!r}, ...) only",
            )
        rows = self._rows(x) if x is not None else (batch_size or frame.size)
        if rows != frame.size:
            raise DataError(
                f"the {DATA_PLATE!r} plate holds {frame.size} data points, the batch {rows}",
                f"index the data with the plate's indices: with pyro.plate({DATA_PLATE!r}, N, "
                "subsample_size=B) as i: model(x[i])",
            )
        return rows

    def _rows(self, x: Tensor) -> int:
        """The batch size B of ``x`` ``(..., B, *x_shape)``, its shape checked."""
        self.check_shape(x)
        return x.shape[-len(self.x_shape) - 1]

    def check_batch(self, batch: int) -> None:
        """Refuse a batch of one in training mode when batch norm would normalise it with its
        own statistics (a wrong answer, or torch's "Expected more than 1 value per channel")."""
        if batch == 1 and self.training and self._batch_norm:
            raise ConfigError(
                f"{type(self).__name__} is in training mode, where batch norm normalises a batch "
                "by its own statistics, and the batch holds one data point",
                "call model.eval() to use the running statistics (to score or generate), "
                "or train on batches of two or more",
            )

    @functools.cached_property
    def _batch_norm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules())

    def check_shape(self, x: Tensor) -> None:
        """Refuse ``x`` unless it is shaped ``(..., B, *x_shape)``."""
        if tuple(x.shape[x.dim() - len(self.x_shape):]) != self.x_shape or x.dim() <= len(self.x_shape):
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
        """Validate a data set ``(N, *x_shape)`` once, before training: shape, finiteness,
        range, likelihood support."""
        self.check_shape(x)
        if x.dim() != len(self.x_shape) + 1:
            raise DataError(
                f"expected a data set of shape (N, {', '.join(map(str, self.x_shape))}), got {tuple(x.shape)}",
                "pass the data points stacked along one dimension",
            )
        self.likelihood.check(x)

    # ---------------------------------------------------------- param store
    def sync_param_store(self) -> None:
        """Line the model's parameters up with Pyro's param store, so that Pyro's optimisers
        train the tensors the networks compute with.

        A tensor the store holds under one of the model's names (one ``load`` read from a
        file, or another model's of the same name) is copied into the model's parameter,
        and the model's own parameters take their places in the store. With
        ``pyro.settings.set(module_local_params=True)`` the store is not used; the
        parameters are then marked as their own unconstrained values, as Pyro marks the
        values of its param statements, so :class:`~pyro.infer.SVI` can train them too.
        """
        if pyro.settings.get("module_local_params"):
            for p in self.parameters():
                if getattr(p, "unconstrained", None) is None:
                    p.unconstrained = weakref.ref(p)
            return
        store = pyro.get_param_store()
        mine = named_store_params(self)
        held = dict(store.named_parameters())
        if all(held.get(name) is p for name, p, _ in mine):
            return
        with torch.no_grad():
            for name, p, _ in mine:
                value = held.get(name)
                if value is None or value is p:
                    continue
                if value.shape != p.shape:
                    raise ConfigError(
                        f"Pyro's param store holds {name!r} with shape {tuple(value.shape)}, "
                        f"not {type(self).__name__}'s {tuple(p.shape)}",
                        "give the model another name=..., or pyro.clear_param_store() first",
                    )
                p.copy_(value)
        store.set_state({"params": {n: p for n, p, _ in mine}, "constraints": {n: c for n, _, c in mine}})

    # ------------------------------------------------------------ model/guide
    @abstractmethod
    def model(self, x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None) -> Tensor:
        """The generative model p(x, z): samples ``z1..zL`` and ``x`` (observed when given);
        returns the likelihood r(x | z) at the sampled latents."""

    def forward(self, *args, **kwargs) -> Tensor:
        """Alias of :meth:`model`, so the module itself is a Pyro model."""
        return self.model(*args, **kwargs)

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
        otherwise, or where the model refuses it (the HVAE's z_l below the top, whose model
        parent the guide draws after z_l), the single-sample estimate log q − log p.
        ``traces``: the guide and model traces of :meth:`traces` on ``x``, when the caller
        has them already.
        """
        guide_trace, model_trace = self.traces(x) if traces is None else traces
        kls = []
        for name in self.latent_sites:
            q, p = guide_trace.nodes[name], model_trace.nodes[name]
            try:
                kls.append(kl_divergence(q["fn"], p["fn"]))
            except (NotImplementedError, ConfigError):  # unknown, or refused (the HVAE's)
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
        trace = poutine.trace(model).get_trace(batch_size=num_samples)
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
    :param name: prefix of the model's names in Pyro's param store (default: a new one).
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
        z_dims = check_z_dims(z_dims)
        super().__init__(x_shape, self.latent_dims(z_dims), likelihood, name)
        self.arch = architecture(self.x_shape, len(z_dims), stem, width)

    @staticmethod
    def latent_dims(z_dims: tuple[int, ...]) -> tuple[int, ...]:
        """Widths of the latent sites for ``z_dims`` (one site per entry here)."""
        return z_dims

    def init_weights(self) -> None:
        """The authors' initialisation (:func:`~pyro_vlae.nets.blocks.init_weights`) of every network."""
        self.apply(init_weights)
