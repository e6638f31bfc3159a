"""Stamps from files: reading one 2-D image from FITS, fitting it to the store's size,
estimating its background noise."""

from __future__ import annotations

import gzip
import io
import warnings
import zlib
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from convention.errors import ConventionError

MAX_STAMP_SIDE = 1024  # pixels: a postage stamp, not a CCD image
_GZIP_MAGIC = b"\x1f\x8b"
_FITS_MAGIC = b"SIMPLE  ="
_OTHER_FORMATS = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image"}


class FitsFile:
    """A FITS file (plain or gzipped) read once, whose HDUs give checked 2-D stamps.

    Args:
        source: a file path, or the file's bytes (``path`` then names it in errors).
        path, obj: file and object named in errors.
        what: what the images are, in errors (``science cutout``).

    Raises:
        ConventionError: unreadable, or not FITS.
    """

    def __init__(
        self,
        source: str | Path | bytes,
        *,
        path: str | Path | None = None,
        obj: str | None = None,
        what: str = "stamp",
    ):
        self.where = path if path is not None else source
        self.obj, self.what = obj, what
        try:
            raw = Path(source).read_bytes() if isinstance(source, str | Path) else bytes(source)
        except OSError as err:
            raise self._error(f"cannot read {what} ({err.strerror})") from None
        if raw[:2] == _GZIP_MAGIC:
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, ValueError, zlib.error) as err:
                raise self._error(f"corrupt gzip {what} ({err})") from None
        if not raw.startswith(_FITS_MAGIC):
            kind = next((k for m, k in _OTHER_FORMATS.items() if raw.startswith(m)), None)
            raise self._error(f"{what} is not FITS ({kind or f'starts with {raw[:8]!r}'})")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                self._hdul = fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=True)
        except Exception as err:  # astropy raises many types for corrupt files
            raise self._error(f"unreadable FITS {what} ({err})") from None

    def _error(self, cause: str) -> ConventionError:
        return ConventionError(cause, path=self.where, obj=self.obj)

    def image(self, hdu: int = 0) -> np.ndarray:
        """The float32 2-D image of HDU ``hdu``.

        Raises:
            ConventionError: no such HDU, a side over ``MAX_STAMP_SIDE`` (checked in the
                header, before the pixels are read), no image, not 2-D, zero size, or no
                finite pixel.
        """
        what = self.what
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                try:
                    unit = self._hdul[hdu]
                except IndexError:
                    raise self._error(f"{what}: no HDU {hdu}") from None
                sides = [int(unit.header.get(f"NAXIS{k}", 0)) for k in (1, 2)]
                if max(sides) > MAX_STAMP_SIDE:
                    raise self._error(
                        f"{what}: HDU {hdu} is {sides[0]}x{sides[1]} pixels, larger than a "
                        f"{MAX_STAMP_SIDE}-pixel stamp"
                    )
                data = unit.data
                data = None if data is None else np.array(data, dtype=np.float32)
        except ConventionError:
            raise
        except Exception as err:  # astropy raises many types for corrupt files
            raise self._error(f"unreadable FITS {what} ({err})") from None
        if data is None:
            raise self._error(f"{what}: HDU {hdu} holds no image")
        if data.ndim != 2:
            raise self._error(f"{what}: HDU {hdu} is {data.ndim}-D, not 2-D")
        if data.size == 0:
            raise self._error(f"{what}: HDU {hdu} has zero size")
        if not np.isfinite(data).any():
            raise self._error(f"{what}: HDU {hdu} holds no finite pixel")
        return data

    def close(self) -> None:
        self._hdul.close()


def read_fits_image(
    source: str | Path | bytes,
    hdu: int = 0,
    *,
    path: str | Path | None = None,
    obj: str | None = None,
    what: str = "stamp",
) -> np.ndarray:
    """The 2-D image of one HDU of a FITS file (see :class:`FitsFile`)."""
    fits_file = FitsFile(source, path=path, obj=obj, what=what)
    try:
        return fits_file.image(hdu)
    finally:
        fits_file.close()


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
