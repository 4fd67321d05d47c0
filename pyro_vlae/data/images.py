"""Reading image files for the streamed data sets: every failure names the file."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..errors import DataError


def read_image(path: str | Path) -> Image.Image:
    """The image at ``path`` as RGB, fully decoded.

    A truncated, corrupt or non-image file raises :class:`DataError` naming it (PIL's own
    errors do not), so a bad file in a folder of thousands can be found and replaced.
    """
    try:
        with Image.open(path) as image:
            return image.convert("RGB")  # decodes every pixel: a truncated file fails here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(
            f"cannot read the image {path} ({type(err).__name__}: {err})",
            "replace the file with a good copy, or remove it from the folder",
        ) from err
