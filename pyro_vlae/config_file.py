"""Run configurations from a file: a run's ``config.json``, or TOML / YAML with the same keys.

The keys are the flat options of :class:`~pyro_vlae.config.RunConfig`, as a run's
``config.json`` holds them (``pyro-vlae fit --help`` names them with dashes: ``--batch-size``
is ``batch_size``). A file is read whole and
checked before anything runs: every unknown key and every value of the wrong type is named
in one message. TOML is read with the standard library's ``tomllib`` (Python >= 3.11;
``tomli`` on 3.10); YAML needs PyYAML (``pip install pyyaml``).
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any, Union

from .config import RunConfig
from .errors import ConfigError

SUFFIXES = (".json", ".toml", ".yaml", ".yml")


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}", "fix the file, or write it again") from None
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ConfigError(
                    "reading TOML on Python 3.10 needs the tomli package", "pip install tomli, or use JSON"
                ) from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}", "fix the file") from None
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            f"reading {path.name} needs PyYAML, which is not installed",
            'pip install pyyaml (or "pyro-vlae[yaml]"), or write the file as TOML or JSON',
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}", "fix the file") from None


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if origin is tuple:
        return isinstance(value, list | tuple) and all(_matches(v, args[0]) for v in value)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        named = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" (or left out)" if type(None) in args else "")
    if origin is tuple:
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s"  # "an integer" → "a list of integers"
    if origin is dict:
        return "a table of options"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def check_config(values: Any, source: str = "the configuration") -> dict[str, Any]:
    """Check a mapping of :class:`RunConfig` keys: one line per unknown key (with the closest
    known one) and per value of the wrong type, all in one :class:`ConfigError`. Returns the
    values ready for :meth:`RunConfig.from_dict`."""
    if not isinstance(values, dict):
        raise ConfigError(
            f"{source} holds {type(values).__name__}, not a table of options",
            "write one `key = value` per option, e.g. steps = 1000",
        )
    hints = RunConfig.hints()
    known = list(hints)
    problems = []
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(str(key).replace("-", "_"), known, n=1)
            problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        elif not _matches(value, hints[key]):
            problems.append(f"{key} must be {_describe(hints[key])}, got {value!r}")
    if problems:
        raise ConfigError(
            f"{source} has {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n  - " + "\n  - ".join(problems),
            f"the known keys are: {', '.join(known)}",
        )
    out = dict(values)
    if out.get("z_dims") is not None:
        out["z_dims"] = tuple(out["z_dims"])
    return out


def merge_config(
    defaults: dict[str, Any], given: dict[str, Any], path: str | Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options of a run started from the file ``path`` (:func:`read_config`): its values
    over the ``defaults``, the options ``given`` on the command line over both. A length given
    (``steps`` or ``epochs``) replaces the file's, whichever of the two the file holds.

    Returns the merged options and the subset set explicitly (by the file or the command line),
    which a resumed run applies or refuses."""
    from_file = read_config(path)
    options = {**defaults, **from_file, **given}
    for length, other in (("steps", "epochs"), ("epochs", "steps")):
        if length in given and other not in given:
            options[other] = None
    explicit = {k: options[k] for k in (*from_file, *given) if k in options}
    return options, explicit


def fit_config(
    options: dict[str, Any], given: dict[str, Any], path: str | Path | None = None
) -> tuple[RunConfig, dict[str, Any]]:
    """The validated configuration of ``pyro-vlae fit``: ``options`` (every option of the
    command line, defaults included; ``-P`` left out is no plugin option), with the file
    ``path``, if any, merged under the options ``given`` explicitly (:func:`merge_config`).

    Returns it and the options set explicitly, which a resumed run applies or refuses
    (:meth:`RunConfig.resume`)."""
    if path is not None:
        options, given = merge_config(options, given, path)
    config = RunConfig.from_dict({**options, "plugin_options": options["plugin_options"] or {}})
    config.validate()
    return config, given


def read_config(path: str | Path) -> dict[str, Any]:
    """The checked options of a ``.json``, ``.toml`` or ``.yaml`` file, or of a run folder's
    ``config.json``."""
    from .run_folder import CONFIG

    path = Path(path)
    if path.is_dir():
        path = path / CONFIG
    if not path.is_file():
        raise ConfigError(f"no configuration file at {path}", "pass a run's config.json or a .toml/.yaml file")
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{path} is not a configuration file", f"pass a file ending in {', '.join(SUFFIXES)}")
    try:
        values = _parse(path)
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}", "pass a readable text file") from None
    return check_config(values, str(path))
