"""Stamps from files: reading one 2-D image from FITS, fitting it to the store's size,
estimating its background noise."""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from convention.errors import ConventionError

_GZIP_MAGIC = b"\x1f\x8b"
_FITS_MAGIC = b"SIMPLE  ="
_OTHER_FORMATS = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image"}


def read_fits_image(
    source: str | Path | bytes,
    hdu: int = 0,
    *,
    path: str | Path | None = None,
    obj: str | None = None,
    what: str = "stamp",
) -> np.ndarray:
    """The 2-D image of one HDU of a FITS file (plain or gzipped), as float32.

    Args:
        source: a file path, or the file's bytes (``path`` then names it in errors).
        hdu: HDU number.
        path, obj: file and object named in errors.
        what: what the image is, in errors (``science cutout``).

    Raises:
        ConventionError: not FITS, no such HDU, no image, not 2-D, zero size, or no finite
            pixel.
    """
    where = path if path is not None else source
    try:
        raw = Path(source).read_bytes() if isinstance(source, str | Path) else bytes(source)
    except OSError as err:
        raise ConventionError(f"cannot read {what} ({err.strerror})", path=where, obj=obj) from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as err:
            raise ConventionError(f"corrupt gzip {what} ({err})", path=where, obj=obj) from None
    if not raw.startswith(_FITS_MAGIC):
        kind = next((k for m, k in _OTHER_FORMATS.items() if raw.startswith(m)), None)
        found = kind or f"starts with {raw[:8]!r}"
        raise ConventionError(f"{what} is not FITS ({found})", path=where, obj=obj)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(io.BytesIO(raw), memmap=False) as hdul:
                if not 0 <= hdu < len(hdul):
                    raise ConventionError(
                        f"{what}: no HDU {hdu} (file has {len(hdul)})", path=where, obj=obj
                    )
                data = hdul[hdu].data
                data = None if data is None else np.array(data, dtype=np.float32)
    except ConventionError:
        raise
    except Exception as err:  # astropy raises many types for corrupt files
        raise ConventionError(f"unreadable FITS {what} ({err})", path=where, obj=obj) from None
    if data is None:
        raise ConventionError(f"{what}: HDU {hdu} holds no image", path=where, obj=obj)
    if data.ndim != 2:
        raise ConventionError(f"{what}: HDU {hdu} is {data.ndim}-D, not 2-D", path=where, obj=obj)
    if data.size == 0:
        raise ConventionError(f"{what}: HDU {hdu} has zero size", path=where, obj=obj)
    if not np.isfinite(data).any():
        raise ConventionError(f"{what}: HDU {hdu} holds no finite pixel", path=where, obj=obj)
    return data


def fit_stamp(
    image: np.ndarray, shape: tuple[int, int], anchor: tuple[str, str] = ("centre", "centre")
) -> np.ndarray:
    """Centre-crop or NaN-pad a 2-D image to ``shape``.

    Args:
        image: (h, w) stamp.
        shape: (H, W) wanted.
        anchor: per axis, where a stamp clipped at a detector edge lost its pixels:
            ``centre`` pads both sides, ``start`` pads before the data (the stamp was
            clipped at the low edge), ``end`` pads after it.
    """
    out = np.full(shape, np.nan, dtype=np.float32)
    src, dst = [], []
    for size, want, where in zip(image.shape, shape, anchor, strict=True):
        if size >= want:
            start = (size - want) // 2
            src.append(slice(start, start + want))
            dst.append(slice(0, want))
        else:
            pad = {"start": want - size, "end": 0}.get(where, (want - size) // 2)
            src.append(slice(0, size))
            dst.append(slice(pad, pad + size))
    out[tuple(dst)] = image[tuple(src)]
    return out


def background(image: np.ndarray) -> tuple[float, float]:
    """Median background and its per-pixel noise (1.4826 x median absolute deviation) of
    a stamp's finite pixels, after 3-sigma clipping of sources (one pass)."""
    values = image[np.isfinite(image)]
    median = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - median)))
    keep = np.abs(values - median) < 3 * sigma if sigma > 0 else np.ones(len(values), bool)
    median = float(np.median(values[keep]))
    sigma = 1.4826 * float(np.median(np.abs(values[keep] - median)))
    return median, sigma
