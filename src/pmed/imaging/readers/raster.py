"""PNG, JPEG, BMP and TIFF images with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pmed.errors import InputError, require
from pmed.imaging.readers._base import MAX_PIXELS, Image, _exists, _looks_truncated, _why

__all__ = ["read_raster"]

_FIX = "check that the file is a valid PNG/JPEG and not truncated"


def read_raster(path: str | Path, *, grayscale: bool = True) -> Image:
    """Read a PNG/JPEG/BMP/TIFF image with Pillow.

    Parameters
    ----------
    grayscale
        Convert colour images to one channel (ITU-R 601 luma); otherwise RGB channels last.

    Returns
    -------
    Image
        Pixels as stored (uint8 or uint16), spacing ``(1, 1)``.

    Raises
    ------
    InputError
        Missing, damaged, truncated or implausibly large file.
    """
    path = Path(path)
    if not _exists(path):
        raise InputError("image file not found", file=path, fix="check the path")
    PIL = require("PIL", extra="imaging", package="pillow", feature="reading PNG/JPEG")
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS or w < 1 or h < 1:
                raise InputError(f"the header claims an image of {w}×{h} pixels", file=path, fix=_FIX)
            im.load()
            if grayscale and im.mode not in ("L", "I", "I;16", "F"):
                im = im.convert("L")
            elif not grayscale and im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            arr = np.array(im)
    except InputError:
        raise
    except PIL.Image.DecompressionBombError as e:
        raise InputError(f"the image is implausibly large ({_why(e, path)})", file=path, fix=_FIX) from e
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise OSError, SyntaxError, ValueError …
        what = "the image file is truncated" if _looks_truncated(e) else "the image file is damaged or not an image"
        raise InputError(f"{what} ({_why(e, path)})", file=path, fix=_FIX) from e
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise InputError(f"the image decodes to an array of shape {arr.shape}", file=path, fix=_FIX)
    return Image(pixels=arr, meta={"format": path.suffix.lower().lstrip(".")})
