"""Stamps from files: reading one 2-D image from FITS, fitting it to the store's size.

FITS bytes are read with bounded memory: a file (or a gzipped one, as it inflates) may not
hold more than its headers declare (each HDU's header and padded data, one after another)
nor more than a stated cap, ``MAX_FITS_BYTES`` for a stamp file and ``MAX_CUTOUT_BYTES``
for an alert's cutout, so a decompression bomb is refused after reading that much.
"""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from convention.errors import ConventionError
from convention.files import check_input_path

MAX_STAMP_SIDE = 1024  # pixels: a postage stamp, not a CCD image
# A file of stamps (every frame of an object, or a CRTS file's cutouts) and one cutout of
# an alert (a 63x63 ZTF cutout is about 25 kB), inflated.
MAX_FITS_BYTES = 256 * 2**20
MAX_CUTOUT_BYTES = 4 * 2**20
FITS_BLOCK = 2880
CARD = 80
INFLATE_STEP = 2**16  # bytes inflated at a time
_GZIP_MAGIC = b"\x1f\x8b"
_FITS_MAGIC = b"SIMPLE  ="
_OTHER_FORMATS = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image"}


class FitsFile:
    """A FITS file (plain or gzipped) read once, within bounds, whose HDUs give checked
    2-D stamps (``image``); ``hdul`` is its astropy HDU list. A plain floating-point
    primary image is read straight from the bytes, astropy opened only when asked for
    more.

    Args:
        source: a file path, or the file's bytes (``path`` then names it in errors).
        path, obj: file and object named in errors.
        what: what the images are, in errors (``science cutout``).
        limit: the most bytes it may hold, inflated.

    Raises:
        ConventionError: unreadable, not a regular file, not FITS, or more bytes than its
            headers declare or ``limit`` allows.
    """

    def __init__(
        self,
        source: str | Path | bytes,
        *,
        path: str | Path | None = None,
        obj: str | None = None,
        what: str = "stamp",
        limit: int = MAX_FITS_BYTES,
    ):
        self.where = path if path is not None or isinstance(source, bytes) else source
        self.obj, self.what = obj, what
        raw = self._read(source, limit) if isinstance(source, str | Path) else bytes(source)
        if raw[:2] == _GZIP_MAGIC:
            raw = self._inflate(raw, limit)
        elif len(raw) > limit:
            raise self._error(f"{what} holds {len(raw):,} bytes, more than {limit:,}")
        if not raw.startswith(_FITS_MAGIC):
            kind = next((k for m, k in _OTHER_FORMATS.items() if raw.startswith(m)), None)
            raise self._error(f"{what} is not FITS ({kind or f'starts with {raw[:8]!r}'})")
        self.raw = raw
        self._plain = _plain_primary(raw)
        self._hdul: fits.HDUList | None = None
        if self._plain is None:
            self._open()

    @property
    def hdul(self) -> fits.HDUList:
        """The file's astropy HDU list (opened when first asked for)."""
        return self._open()

    def _open(self) -> fits.HDUList:
        if self._hdul is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", AstropyWarning)
                    self._hdul = fits.open(io.BytesIO(self.raw), memmap=False, lazy_load_hdus=True)
            except Exception as err:  # astropy raises many types for corrupt files
                raise self._error(f"unreadable FITS {self.what} ({err})") from None
        return self._hdul

    def _error(self, cause: str) -> ConventionError:
        return ConventionError(cause, path=self.where, obj=self.obj)

    def _read(self, source: str | Path, limit: int) -> bytes:
        """A regular file's bytes, its size checked before it is read."""
        path = Path(source)
        try:
            check_input_path(path, self.what)
            if not path.is_file():
                raise self._error(f"{self.what} is a folder, not a file")
            size = path.stat().st_size
            if size > limit:
                raise self._error(f"{self.what} holds {size:,} bytes, more than {limit:,}")
            return path.read_bytes()
        except ConventionError as err:
            raise self._error(err.cause) from None
        except OSError as err:
            raise self._error(f"cannot read {self.what} ({err.strerror})") from None

    def _inflate(self, raw: bytes, limit: int) -> bytes:
        """Gzipped FITS inflated a step at a time, no further than its headers declare
        and ``limit`` allows."""
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = bytearray()
        declared = 0  # where the HDUs whose headers are whole end
        pending = raw
        try:
            while not inflater.eof:
                step = inflater.decompress(pending, INFLATE_STEP)
                pending = inflater.unconsumed_tail
                if not step and not pending:
                    raise self._error(f"corrupt gzip {self.what} (truncated)")
                out += step
                if len(out) > limit:
                    raise self._error(f"{self.what} inflates past {limit:,} bytes")
                declared = _declared_end(out, declared)
                if _beyond_declared(out, declared):
                    raise self._error(
                        f"{self.what} inflates past the {declared:,} bytes its headers declare"
                    )
        except zlib.error as err:
            raise self._error(f"corrupt gzip {self.what} ({err})") from None
        return bytes(out)

    def image(self, hdu: int = 0) -> np.ndarray:
        """The float32 2-D image of HDU ``hdu``.

        Raises:
            ConventionError: no such HDU, a side over ``MAX_STAMP_SIDE`` (checked in the
                header, before the pixels are read), no image, not 2-D, zero size, or no
                finite pixel.
        """
        what = self.what
        if hdu == 0 and self._plain is not None:
            return _checked(self._plain, hdu, self._error, what)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                try:
                    unit = self.hdul[hdu]
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
        return _checked(data, hdu, self._error, what)

    def close(self) -> None:
        if self._hdul is not None:
            self._hdul.close()


def _checked(
    data: np.ndarray, hdu: int, error: Callable[[str], ConventionError], what: str
) -> np.ndarray:
    """``data`` if it is a 2-D image with a finite pixel.

    Raises:
        ConventionError: (made by ``error``) not 2-D, zero size, or no finite pixel.
    """
    if data.ndim != 2:
        raise error(f"{what}: HDU {hdu} is {data.ndim}-D, not 2-D")
    if data.size == 0:
        raise error(f"{what}: HDU {hdu} has zero size")
    if not np.isfinite(data).any():
        raise error(f"{what}: HDU {hdu} holds no finite pixel")
    return data


_PLAIN_BITPIX = {b"-32": np.dtype(">f4"), b"-64": np.dtype(">f8")}
_SCALING = {b"BSCALE", b"BZERO", b"BLANK"}


def _plain_primary(raw: bytes) -> np.ndarray | None:
    """The primary HDU's float32 (H, W) pixels read straight from the bytes when it is a
    plain floating-point image (BITPIX -32 or -64, two axes of at most
    ``MAX_STAMP_SIDE``, no scaling, its data whole in ``raw``); None for anything else,
    which astropy reads. A broker reads two cutouts an alert, and opening astropy's HDU
    list costs five times reading the pixels (``benchmarks/alert_stream.py``)."""
    header = _header_cards(raw, 0)
    if header is None:
        return None
    size, cards = header
    dtype = _PLAIN_BITPIX.get(cards.get(b"BITPIX", b""))
    if dtype is None or cards.get(b"NAXIS") != b"2" or _SCALING & cards.keys():
        return None
    try:
        width, height = int(cards[b"NAXIS1"]), int(cards[b"NAXIS2"])
    except (KeyError, ValueError):
        return None
    sides_fit = 0 < width <= MAX_STAMP_SIDE and 0 < height <= MAX_STAMP_SIDE
    if not sides_fit or len(raw) < size + width * height * dtype.itemsize:
        return None
    pixels = np.frombuffer(raw, dtype, width * height, size)
    return pixels.reshape(height, width).astype(np.float32)


def read_fits_image(
    source: str | Path | bytes,
    hdu: int = 0,
    *,
    path: str | Path | None = None,
    obj: str | None = None,
    what: str = "stamp",
    limit: int = MAX_FITS_BYTES,
) -> np.ndarray:
    """The 2-D image of one HDU of a FITS file (see :class:`FitsFile`)."""
    fits_file = FitsFile(source, path=path, obj=obj, what=what, limit=limit)
    try:
        return fits_file.image(hdu)
    finally:
        fits_file.close()


_XTENSION = b"XTENSION"


def _declared_end(data: bytes | bytearray, start: int) -> int:
    """Where the HDUs whose headers are whole in ``data`` end (from ``start``, the end of
    those already parsed): each HDU's header blocks and its data, padded to 2880 bytes."""
    end = start
    while True:
        size = _hdu_size(data, end)
        if size is None:
            return end
        end += size


def _beyond_declared(data: bytes | bytearray, declared: int) -> bool:
    """More than a block of bytes after the last whole HDU that start no extension."""
    extra = len(data) - declared
    return declared > 0 and extra > FITS_BLOCK and not data.startswith(_XTENSION, declared)


def _hdu_size(data: bytes | bytearray, start: int) -> int | None:
    """The bytes of the HDU at ``start`` (header and padded data), None while its header
    is not whole in ``data`` or what is there is no header."""
    header = _header_cards(data, start)
    if header is None:
        return None
    size, cards = header
    return size + _padded(_data_bytes(cards))


def _header_cards(data: bytes | bytearray, start: int) -> tuple[int, dict[bytes, bytes]] | None:
    """The header at ``start``: its bytes (whole blocks) and its valued cards (keyword ->
    value, comment cut); None while it is not whole in ``data``."""
    cards: dict[bytes, bytes] = {}
    position = start
    while position + FITS_BLOCK <= len(data):
        for card in range(position, position + FITS_BLOCK, CARD):
            key = bytes(data[card : card + 8]).rstrip()
            if key == b"END":
                return position + FITS_BLOCK - start, cards
            if data[card + 8 : card + 10] == b"= ":
                cards[key] = bytes(data[card + 10 : card + CARD]).split(b"/")[0].strip()
        position += FITS_BLOCK
    return None


def _data_bytes(cards: dict[bytes, bytes]) -> int:
    """An HDU's data size from its header cards (the FITS standard's formula)."""

    def number(key: bytes, default: int) -> int:
        try:
            return int(cards.get(key, str(default).encode()))
        except ValueError:
            return default

    axes = number(b"NAXIS", 0)
    if axes <= 0:
        return 0
    count = 1
    for k in range(1, axes + 1):
        count *= max(number(b"NAXIS%d" % k, 0), 0)
    groups, extra = number(b"GCOUNT", 1), number(b"PCOUNT", 0)
    return abs(number(b"BITPIX", 8)) // 8 * max(groups, 1) * (max(extra, 0) + count)


def _padded(size: int) -> int:
    return -(-size // FITS_BLOCK) * FITS_BLOCK


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
