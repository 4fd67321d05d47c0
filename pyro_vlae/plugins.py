"""Plugins through Python entry points.

Two groups: ``pyro_vlae.datasets`` (subclasses of :class:`~pyro_vlae.data.DatasetPlugin`)
and ``pyro_vlae.likelihoods`` (subclasses of :class:`~pyro_vlae.likelihoods.Likelihood`).
pyro-vlae registers its own plugins through the same groups in its ``pyproject.toml``;
a third-party package adds one with, e.g.::

    [project.entry-points."pyro_vlae.datasets"]
    my-data = "my_package.data:MyData"
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .data.base import Data, DatasetPlugin
from .errors import PluginError
from .likelihoods.base import Likelihood

DATASETS = "pyro_vlae.datasets"
LIKELIHOODS = "pyro_vlae.likelihoods"
GROUPS: dict[str, tuple[str, type]] = {
    DATASETS: ("dataset", DatasetPlugin),
    LIKELIHOODS: ("likelihood", Likelihood),
}


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, as ``pyro-vlae plugins`` lists it."""

    name: str
    kind: str
    distribution: str
    description: str
    error: str | None = None


def _entry_points(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def _load(group: str, ep: EntryPoint) -> type:
    kind, base = GROUPS[group]
    where = f"{ep.value} (from {ep.dist.name if ep.dist else 'unknown distribution'})"
    try:
        obj = ep.load()
    except Exception as err:  # a broken third-party plugin must not break the library
        raise PluginError(
            f"{kind} plugin {ep.name!r} failed to import: {type(err).__name__}: {err}",
            f"fix or reinstall the package providing {where}",
        ) from err
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise PluginError(
            f"{kind} plugin {ep.name!r} at {where} is {obj!r}, not a subclass of "
            f"{base.__module__}.{base.__qualname__}",
            f"make the entry point name a {base.__name__} subclass",
        )
    return obj


def names(group: str) -> list[str]:
    """Registered plugin names of one group, sorted."""
    return sorted(_entry_points(group))


def load_plugin(group: str, name: str) -> type:
    """The plugin class registered as ``name`` in ``group``."""
    kind = GROUPS[group][0]
    eps = _entry_points(group)
    if name not in eps:
        available = ", ".join(sorted(eps)) or "none (is pyro-vlae installed with pip?)"
        raise PluginError(
            f"unknown {kind} plugin {name!r}",
            f"choose one of: {available}; `pyro-vlae plugins` lists them all",
        )
    return _load(group, eps[name])


def dataset(name: str, **options: Any) -> DatasetPlugin:
    """An instance of the data-set plugin ``name``."""
    return load_plugin(DATASETS, name)(**options)


def likelihood(name: str, **options: Any) -> Likelihood:
    """An instance of the likelihood plugin ``name``."""
    return load_plugin(LIKELIHOODS, name)(**options)


def load_data(plugin: DatasetPlugin, split: str) -> Data:
    """``plugin.load(split)``, refusing a result that is neither :class:`TensorData` nor :class:`StreamData`."""
    data = plugin.load(split)
    if not isinstance(data, Data):
        raise PluginError(
            f"dataset plugin {plugin.name or type(plugin).__name__!r} returned {type(data).__name__} "
            "from load(), not TensorData or StreamData",
            f"fix {type(plugin).__module__}.{type(plugin).__qualname__}.load, or report it to its authors",
        )
    return data


def list_plugins() -> list[PluginInfo]:
    """Every registered plugin; one that fails to load is listed with its error and warned about."""
    infos = []
    for group, (kind, _) in GROUPS.items():
        for name, ep in sorted(_entry_points(group).items()):
            dist = ep.dist.name if ep.dist else "?"
            try:
                cls = _load(group, ep)
            except PluginError as err:
                warnings.warn(str(err), stacklevel=2)
                infos.append(PluginInfo(name, kind, dist, "", error=err.problem))
                continue
            doc = (cls.description or (cls.__doc__ or "").strip().split("\n")[0]).strip()
            infos.append(PluginInfo(name, kind, dist, doc))
    return infos
