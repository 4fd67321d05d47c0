"""What an evaluation finds, as typed results.

Each result holds its numbers JSON-safe (a missing number is ``None``,
:mod:`~pyro_vlae.evaluate.formatting`) and converts to and from the JSON layout of
``evaluation.json`` with ``to_json()`` / ``from_json()``, so that
``from_json(to_json(r)) == r``. ``from_json`` also reads files written by earlier versions,
which lack some of the keys: a missing key gets the value those versions meant.

* :class:`IwaeResult`: IWAE_K on a subset of the points, beside their ELBO;
* :class:`LayerSummary`: one latent layer's KL, active units and PCA spectrum;
* :class:`Hierarchy`: the probe and NMI layer × factor matrices, MIG and the ordering scores;
* :class:`InterventionMatrix`: the interventional layer × factor matrix;
* :class:`Fidelity`: the sample fidelity;
* :class:`RunInfo`: which run, step and split an evaluation of a run folder is of;
* :class:`Evaluation`: all of them together, the content of ``evaluation.json``.

:class:`HeatMap` is what :func:`~pyro_vlae.plotting.plot_matrix` draws of a layer × factor matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .formatting import json_safe

#: a missing number in a matrix or list of results
Number = float | None
#: the decimals of the sample fidelity's numbers in JSON
FIDELITY_DIGITS = 4
#: bins of the histogram of a circular factor in the sample fidelity (30° sectors of a colour wheel for 12)
BINS = 12
#: a sample is read confidently when each categorical factor's most likely class has this probability
CONFIDENCE = 0.9


@dataclass
class HeatMap:
    """A layer × factor matrix to draw: ``values[l][k]`` for layer ``layers[l]`` and factor
    ``factors[k]``, the factors' abstraction levels (where declared) and the matrix's
    ordering score (``None`` when undefined)."""

    title: str
    layers: list[str]
    factors: list[str]
    values: list[list[Number]]
    factor_levels: dict[str, int]
    ordering: Number


@dataclass
class IwaeResult:
    """IWAE_K (nats per point) with K = ``samples`` on ``num_points`` points (``points`` says
    which), the analytic-KL ELBO of those points (``elbo``) and the Monte-Carlo ELBO of the
    same draws (``elbo_same_draws``)."""

    samples: int
    num_points: int
    points: str
    value: Number
    elbo: Number
    elbo_same_draws: Number

    def to_json(self) -> dict[str, Any]:
        """The ``iwae`` object of ``evaluation.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IwaeResult:
        """Read :meth:`to_json`; earlier versions used the first points and had no ``elbo``."""
        return cls(samples=data["samples"], num_points=data["num_points"], points=data.get("points", "the first"),
                   value=data["value"], elbo=data.get("elbo"), elbo_same_draws=data["elbo_same_draws"])


@dataclass
class LayerSummary:
    """One latent layer: KL (nats per point), its share of the total, its number of units,
    how many are active, every unit's activity and the PCA spectrum of its posterior means."""

    kl: Number
    kl_share: Number
    units: int
    active_units: int
    activity: list[Number]
    pca_explained_variance: list[Number]

    def to_json(self) -> dict[str, Any]:
        """One entry of the ``layers`` object of ``evaluation.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerSummary:
        """Read :meth:`to_json` (earlier versions kept no unit activities)."""
        return cls(kl=data["kl"], kl_share=data["kl_share"], units=data["units"], active_units=data["active_units"],
                   activity=list(data.get("activity", [])), pca_explained_variance=list(data["pca_explained_variance"]))


@dataclass
class Hierarchy:
    """Layer × factor ``probe`` and ``nmi`` matrices, MIG overall and per layer, and the
    ordering score of each matrix over the factors with a declared level (definitions in
    :mod:`pyro_vlae.evaluate.hierarchy`)."""

    layers: list[str]
    factors: list[str]
    factor_levels: dict[str, int]
    probe: list[list[Number]]
    nmi: list[list[Number]]
    mig: Number
    mig_per_layer: list[Number]
    ordering_probe: Number
    ordering_nmi: Number

    def to_json(self) -> dict[str, Any]:
        """The ``hierarchy`` object of ``evaluation.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hierarchy:
        """Read :meth:`to_json`."""
        return cls(layers=list(data["layers"]), factors=list(data["factors"]),
                   factor_levels=dict(data.get("factor_levels", {})), probe=data["probe"], nmi=data["nmi"],
                   mig=data["mig"], mig_per_layer=data["mig_per_layer"], ordering_probe=data["ordering_probe"],
                   ordering_nmi=data["ordering_nmi"])

    def heat_map(self) -> HeatMap:
        """The probe matrix, as ``hierarchy.png`` shows it."""
        return HeatMap("probe informativeness", self.layers, self.factors, self.probe, self.factor_levels,
                       self.ordering_probe)


@dataclass
class InterventionMatrix:
    """The interventional layer × factor matrix (:mod:`pyro_vlae.evaluate.intervention`):
    ``matrix = change / baseline`` over ``pairs`` pairs drawn with ``seed``, the factors'
    ``kinds`` and declared levels, the ``ordering`` score, the factor reader's quality
    (``None`` without one), why a reader was refused, and the factors the samples hardly
    vary in (``narrow``, with the sample fidelity)."""

    layers: list[str]
    factors: list[str]
    kinds: dict[str, str]
    factor_levels: dict[str, int]
    matrix: list[list[Number]]
    change: list[list[Number]]
    baseline: list[Number]
    ordering: Number
    pairs: int
    seed: int
    reader: dict[str, Any] | None
    reader_refused: str | None = None
    narrow: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``intervention`` object of ``evaluation.json``: the matrix under
        ``intervention``, its score under ``ordering_intervention``."""
        data = {"layers": self.layers, "factors": self.factors, "kinds": self.kinds,
                "factor_levels": self.factor_levels, "intervention": self.matrix, "change": self.change,
                "baseline": self.baseline, "ordering_intervention": self.ordering, "pairs": self.pairs,
                "seed": self.seed, "reader": self.reader}
        if self.reader_refused is not None:
            data["reader_refused"] = self.reader_refused
        if self.narrow is not None:
            data["narrow"] = self.narrow
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InterventionMatrix:
        """Read :meth:`to_json`."""
        return cls(layers=list(data["layers"]), factors=list(data["factors"]), kinds=dict(data.get("kinds", {})),
                   factor_levels=dict(data.get("factor_levels", {})), matrix=data["intervention"],
                   change=data.get("change", []), baseline=data["baseline"],
                   ordering=data.get("ordering_intervention"), pairs=data["pairs"], seed=data.get("seed", 0),
                   reader=data.get("reader"), reader_refused=data.get("reader_refused"), narrow=data.get("narrow"))

    def heat_map(self) -> HeatMap:
        """The normalised matrix, as ``intervention.png`` shows it."""
        return HeatMap("change when only this layer is re-drawn", self.layers, self.factors, self.matrix,
                       self.factor_levels, self.ordering)


@dataclass
class Fidelity:
    """Sample fidelity of a model (:mod:`pyro_vlae.evaluate.fidelity`); every mapping is keyed by factor.

    :param factors: the factors read, the reader's first, then the image statistics.
    :param kinds: ``categorical``, ``circular``, ``continuous`` or ``statistic`` per factor.
    :param distance: TV (categorical, circular) or W1 / sd (the others); ``nan`` when the real
        values do not vary.
    :param sample_spread: mean change of the factor between two independent samples.
    :param data_spread: mean change between two independent real images.
    :param confident: share of samples read with probability ≥ ``confidence`` (``None``
        without a categorical factor read).
    :param confident_data: the same share for the real images.
    """

    factors: list[str]
    kinds: dict[str, str]
    distance: dict[str, Number]
    sample_spread: dict[str, Number]
    data_spread: dict[str, Number]
    confident: Number
    confident_data: Number
    num_samples: int
    bins: int = BINS
    confidence: float = CONFIDENCE
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``fidelity`` object of ``evaluation.json``: numbers rounded to
        :data:`FIDELITY_DIGITS` decimals, NaN as ``None``."""
        return json_safe(asdict(self), FIDELITY_DIGITS)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fidelity:
        """Read :meth:`to_json`."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class RunInfo:
    """Which run folder (``run``) an evaluation is of: its model, data-set plugin, layer sizes,
    training seed and last ``step``, the ``split`` evaluated and the evaluation's own seed.
    Earlier versions left some of these out: they are ``None`` then."""

    run: str | None
    model: str | None
    plugin: str | None
    z_dims: list[int] | None
    seed: int | None
    step: int | None
    split: str | None
    evaluation_seed: int | None

    def to_json(self) -> dict[str, Any]:
        """The first keys of ``evaluation.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunInfo | None:
        """Read :meth:`to_json` out of a whole ``evaluation.json``; ``None`` when it has none
        of these keys (an evaluation of a model, not of a run folder)."""
        if not any(f.name in data for f in fields(cls)):
            return None
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass
class Evaluation:
    """All numbers of an evaluation (per data point, nats): the ELBO and its reconstruction
    term over ``num_points`` points, IWAE_K, bits/dim (8-bit or binary data only), every
    layer's summary and, where measured, the hierarchy metrics, the intervention matrix and
    the sample fidelity; for a run folder, which run it is of and the VLAE's fade-in at its
    last step (:meth:`~pyro_vlae.train.LayerFadeIn.state`)."""

    num_points: int
    elbo: Number
    recon: Number
    iwae: IwaeResult
    layers: dict[str, LayerSummary]
    bits_per_dim: Number = None
    hierarchy: Hierarchy | None = None
    intervention: InterventionMatrix | None = None
    fidelity: Fidelity | None = None
    run: RunInfo | None = None
    fade_in: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The content of ``evaluation.json``; parts not measured are left out."""
        data: dict[str, Any] = self.run.to_json() if self.run is not None else {}
        data |= {"num_points": self.num_points, "elbo": self.elbo, "recon": self.recon, "iwae": self.iwae.to_json()}
        if self.bits_per_dim is not None:
            data["bits_per_dim"] = self.bits_per_dim
        data["layers"] = {name: layer.to_json() for name, layer in self.layers.items()}
        if self.hierarchy is not None:
            data["hierarchy"] = self.hierarchy.to_json()
        if self.fade_in is not None:
            data["fade_in"] = self.fade_in
        if self.intervention is not None:
            data["intervention"] = self.intervention.to_json()
        if self.fidelity is not None:
            data["fidelity"] = self.fidelity.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evaluation:
        """Read :meth:`to_json` (an ``evaluation.json`` of this or an earlier version)."""
        def part(key: str, kind: Any) -> Any:
            return kind.from_json(data[key]) if data.get(key) is not None else None

        return cls(
            num_points=data["num_points"], elbo=data["elbo"], recon=data["recon"],
            iwae=IwaeResult.from_json(data["iwae"]),
            layers={name: LayerSummary.from_json(layer) for name, layer in data["layers"].items()},
            bits_per_dim=data.get("bits_per_dim"), hierarchy=part("hierarchy", Hierarchy),
            intervention=part("intervention", InterventionMatrix), fidelity=part("fidelity", Fidelity),
            run=RunInfo.from_json(data), fade_in=data.get("fade_in"),
        )


__all__ = [
    "BINS",
    "CONFIDENCE",
    "Evaluation",
    "Fidelity",
    "HeatMap",
    "Hierarchy",
    "InterventionMatrix",
    "IwaeResult",
    "LayerSummary",
    "RunInfo",
]
