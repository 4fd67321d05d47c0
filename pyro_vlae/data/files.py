"""Finding a data set's files where the user keeps them, in the layout torchvision expects.

torchvision's data-set classes read fixed layouts (``ROOT/MNIST/raw/train-images-idx3-ubyte``,
``ROOT/celeba/img_align_celeba/``, ...). A user's ``--data-dir`` may instead hold the files
directly, compressed as they were downloaded. :func:`stage` builds the expected layout in the
cache folder (decompressing ``.gz`` files, linking the rest) without touching the user's folder.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..errors import DataError


def cache_dir() -> Path:
    """``$PYRO_VLAE_CACHE``, else ``$XDG_CACHE_HOME/pyro-vlae``, else ``~/.cache/pyro-vlae``."""
    if os.environ.get("PYRO_VLAE_CACHE"):
        return Path(os.environ["PYRO_VLAE_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "pyro-vlae"


def default_data_dir() -> Path:
    """Where data sets are downloaded when no ``--data-dir`` is given."""
    return cache_dir() / "data"


def find(folder: Path, names: Iterable[str]) -> dict[str, Path] | None:
    """Each of ``names`` in ``folder``, as it is or compressed (``NAME.gz``); ``None`` if any is missing."""
    found = {}
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            return None
    return found


def stage(files: dict[str, Path], layout: str, key: Path) -> Path:
    """A root folder holding ``files`` under ``root/layout/NAME`` (decompressed), for torchvision.

    The root lives in the cache folder, one per source folder ``key``; a file is staged again
    when its source is newer. Raises :class:`DataError` for a truncated or corrupt ``.gz``.
    """
    digest = hashlib.sha1(str(key.resolve()).encode()).hexdigest()[:12]
    root = cache_dir() / "staged" / f"{key.name or 'data'}-{digest}"
    target = root / layout
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot create the cache folder {target}: {err.strerror or err}",
            "set PYRO_VLAE_CACHE to a writable folder",
        ) from err
    for name, source in files.items():
        dest = target / name
        if dest.exists() and dest.stat().st_mtime >= source.stat().st_mtime:
            continue
        partial = dest.with_name(dest.name + ".partial")
        try:
            if source.suffix == ".gz":
                with gzip.open(source, "rb") as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            else:
                partial.unlink(missing_ok=True)
                partial.symlink_to(source.resolve())
            os.replace(partial, dest)
        except (OSError, EOFError) as err:
            partial.unlink(missing_ok=True)
            raise DataError(
                f"cannot read {source}: {err}",
                f"the file is truncated or corrupt; download it again into {source.parent}",
            ) from err
    return root


def missing(dataset: str, names: Iterable[str], folder: Path, where: str, reason: str = "") -> DataError:
    """The error for files that are neither present nor downloadable."""
    listed = ", ".join(names)
    return DataError(
        f"{dataset} files not found in {folder}" + (f" ({reason})" if reason else ""),
        f"place {listed} ({where}) in a folder and pass it with --data-dir",
    )
