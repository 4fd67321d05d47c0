"""Plugins through Python entry points.

Two groups: ``pyro_vlae.datasets`` (subclasses of :class:`~pyro_vlae.data.DatasetPlugin`)
and ``pyro_vlae.likelihoods`` (subclasses of :class:`~pyro_vlae.likelihoods.Likelihood`).
pyro-vlae registers its own plugins through the same groups in its ``pyproject.toml``;
a third-party package adds one with, e.g.::

    [project.entry-points."pyro_vlae.datasets"]
    my-data = "my_package.data:MyData"
"""

from __future__ import annotations

import difflib
import inspect
import json
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .data.base import Data, DatasetPlugin
from .errors import ConfigError, PluginError
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


def option_names(cls: type) -> list[str] | None:
    """The keyword options ``cls(...)`` accepts, or ``None`` when it takes any (``**kwargs``)."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _type_name(default: Any) -> str | None:
    """``"a number"`` etc. for a default whose type a value from the command line must match."""
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int | float):
        return "a number" if isinstance(default, float) else "an integer"
    return None


def _matches(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return True


def check_options(cls: type, group: str, name: str, options: dict[str, Any]) -> None:
    """Refuse options ``cls`` does not take, with one message listing those it does, and
    values whose type differs from the option's default (a number given as text, ...)."""
    kind = GROUPS[group][0]
    flag = "-P" if group == DATASETS else "-L"
    params = inspect.signature(cls).parameters
    for key, value in options.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        expected = _type_name(default)
        if expected is not None and not _matches(value, default):
            raise ConfigError(
                f"option {key!r} of the {kind} plugin {name!r} must be {expected}, got {value!r}",
                f"give e.g. {flag} {key}={json.dumps(default)}",
            )
    valid = option_names(cls)
    unknown = [] if valid is None else sorted(set(options) - set(valid))
    if not unknown:
        return
    guesses = [difflib.get_close_matches(key, valid, n=1) for key in unknown]
    hint = "; ".join(f"{key!r}: did you mean {g[0]!r}?" for key, g in zip(unknown, guesses) if g)
    raise ConfigError(
        f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for the {kind} "
        f"plugin {name!r}" + (f" ({hint})" if hint else ""),
        f"its options are: {', '.join(valid) or 'none'}; give them as {flag} KEY=VALUE",
    )


def dataset(name: str, **options: Any) -> DatasetPlugin:
    """An instance of the data-set plugin ``name``; unknown ``options`` raise :class:`ConfigError`."""
    cls = load_plugin(DATASETS, name)
    check_options(cls, DATASETS, name, options)
    return cls(**options)


def likelihood(name: str, **options: Any) -> Likelihood:
    """An instance of the likelihood plugin ``name``; unknown ``options`` raise :class:`ConfigError`."""
    cls = load_plugin(LIKELIHOODS, name)
    check_options(cls, LIKELIHOODS, name, options)
    return cls(**options)


def load_data(plugin: DatasetPlugin, split: str) -> Data:
    """``plugin.load(split)``, refusing a result that is not a :class:`~pyro_vlae.data.Data`
    (:class:`TensorData`, :class:`StreamData` or a container of the plugin's own)."""
    data = plugin.load(split)
    if not isinstance(data, Data):
        raise PluginError(
            f"dataset plugin {plugin.name or type(plugin).__name__!r} returned {type(data).__name__} "
            "from load(), not a pyro_vlae.data.Data (TensorData, StreamData or a subclass)",
            f"fix {type(plugin).__module__}.{type(plugin).__qualname__}.load, or report it to its authors",
        )
    return data


def describe_plugin(name: str, library_defaults: dict[str, Any]) -> list[str]:
    """Lines for ``pyro-vlae plugins NAME``: the plugin's description, its options with their
    defaults and, for a data set (built with its default options), the values it recommends
    for every model, its recipes per model, and the ``library_defaults`` it leaves as they are."""
    group = next((g for g in (DATASETS, LIKELIHOODS) if name in _entry_points(g)), None)
    if group is None:
        raise PluginError(f"unknown plugin {name!r}", "`pyro-vlae plugins` lists them all")
    cls = load_plugin(group, name)
    lines = [f"{name} ({GROUPS[group][0]}): {cls.description or (cls.__doc__ or '').strip().splitlines()[0]}"]
    params = [p for p in inspect.signature(cls).parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("data_dir", "value_range")]
    flag = "-P" if group == DATASETS else "-L"
    lines.append(f"options ({flag} KEY=VALUE):" if params else "options: none")
    lines += [f"  {p.name} = {json.dumps(p.default, default=str)}" for p in params]
    if group == DATASETS:
        try:
            plugin = cls()
        except Exception:  # a plugin that needs an option to be built: its class's values
            plugin = cls
        lines.append(f"default likelihood: {plugin.default_likelihood}")
        recommended = dict(plugin.recommended)
        lines.append("recommended (fit's [default: the data set's]):")
        lines += [f"  {k} = {_shown(v)}" for k, v in recommended.items()]
        lines += [f"  {k} = {_shown(v)}  (library default)" for k, v in library_defaults.items()
                  if k not in recommended]
        for model, recipe in getattr(plugin, "recipes", {}).items():
            lines.append(f"recipe for {model}: " + ", ".join(f"{k} = {_shown(v)}" for k, v in recipe.items()))
    return lines


def _shown(value: Any) -> str:
    """A recommended value as the command line takes it (lists comma-separated)."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return json.dumps(value, default=str) if isinstance(value, dict) else str(value)


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
