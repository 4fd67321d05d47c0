"""Reading image files: the one reader of ``fit``, ``evaluate`` and ``encode``.

:func:`list_images` finds the images below a folder as people keep them: any depth, any of
:data:`IMAGE_SUFFIXES` in any case, hidden files and folders left out (names starting with
``.``: ``.DS_Store``, macOS's AppleDouble ``._IMG_1.JPG`` companions, ``.thumbnails/``).
:func:`find_unreadable` decodes every one of them once and returns each file that cannot be
read with the reason, so that a folder is checked in one pass, not one failure per run.
:func:`open_image` and :func:`read_image` read one file; every failure names the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError

#: file name endings read as images (compared in lower case)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_hidden(path: Path, root: Path) -> bool:
    """Whether ``path`` or a folder between ``root`` and it starts with ``.`` (hidden files and
    folders, ``.DS_Store``, AppleDouble ``._*`` files)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def list_images(folder: str | Path) -> list[Path]:
    """Every image file below ``folder`` (any depth, sorted by path), leaving out hidden files
    and folders (:func:`is_hidden`) and files whose ending is not in :data:`IMAGE_SUFFIXES`.
    Raises :class:`DataError` when there is none."""
    folder = Path(folder)
    paths = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        paths += [Path(parent) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
        raise DataError(
            f"no image files in {folder}",
            f"pass a folder holding {', '.join(IMAGE_SUFFIXES)} files (at any depth)",
        )
    return sorted(paths)


def eight_bits(image: Image.Image, name: str) -> Image.Image:
    """``image`` with 8 bits per channel: a 16-bit (or 32-bit integer) grey image is scaled
    from 0–65535 to 0–255, since PIL's own conversion would clip it to white; a
    floating-point image, whose range cannot be known, is refused."""
    if image.mode == "F":
        raise DataError(f"{name} holds floating-point pixels (PIL mode F), whose range cannot be known",
                        "save it as an 8- or 16-bit PNG, or pass a .npy/.pt tensor in the data's range")
    if not (image.mode.startswith("I;16") or image.mode == "I"):
        return image
    array = np.asarray(image, dtype=np.float64)
    if array.min() < 0 or array.max() > 65535:
        raise DataError(f"{name} holds pixel values outside 0 to 65535 (PIL mode {image.mode})",
                        "save it as an 8- or 16-bit PNG")
    return Image.fromarray(np.round(array / 257).astype(np.uint8))  # mode L


def open_image(path: str | Path, draft: int | None = None) -> Image.Image:
    """The image at ``path``, fully decoded, in its own colour mode with 8 bits per channel
    (:func:`eight_bits`). ``draft``: a JPEG may be decoded at a reduced scale no smaller
    than ``draft`` pixels a side (every byte is still read, so a truncated file still fails).

    A missing, truncated, corrupt or non-image file raises :class:`DataError` naming it (PIL's
    own errors do not), so a bad file in a folder of thousands can be found and replaced.
    """
    try:
        with Image.open(path) as image:
            if draft is not None and image.format == "JPEG":
                image.draft(image.mode, (draft, draft))
            image.load()  # decodes every pixel: a truncated file fails here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(
            f"cannot read the image {path} ({type(err).__name__}: {err})",
            "replace the file with a good copy, or remove it from the folder",
        ) from err
    return eight_bits(image, str(path))


def read_image(path: str | Path) -> Image.Image:
    """The image at ``path`` as RGB (grey repeated, alpha dropped), fully decoded; see
    :func:`open_image` for the errors."""
    return open_image(path).convert("RGB")


def unreadable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be read as an image (``None`` when it can)."""
    try:
        open_image(path, draft=64)
    except DataError as err:
        cause = err.__cause__
        reason = f"{type(cause).__name__}: {cause}" if cause is not None else err.problem
        return reason.replace(f" '{path}'", "").replace(str(path), "the file")
    return None


def find_unreadable(paths: Sequence[Path], workers: int | None = None) -> list[tuple[Path, str]]:
    """Every file of ``paths`` that cannot be decoded as an image, with the reason, in the
    order of ``paths``: one pass over the whole folder (decoding runs in ``workers`` threads,
    default one per CPU core)."""
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(unreadable_reason, paths))
    return [(p, r) for p, r in zip(paths, reasons) if r is not None]


def describe_unreadable(bad: Sequence[tuple[Path, str]], root: Path) -> str:
    """One line per unreadable file: its path below ``root`` and the reason."""
    return "\n".join(f"    {p.relative_to(root)}: {reason}" for p, reason in bad)
