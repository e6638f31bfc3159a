"""Reference (template) stamps: the static sky a survey subtracts from each frame.

A survey builds each band's reference before or apart from the transient: SDSS-II
compared its scans with earlier Stripe 82 imaging, a ZTF alert carries the coadd of
``nframesref`` earlier frames, Rubin's a template coadd. A :class:`Reference` is one
band's stamp with that provenance. A series whose source gave none falls back, band by
band, to the median of its own frames (``median-of-frames``, made by
``convention.data.series.references_of``): declared as such, because a transient's light
then leaks into its reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from convention.errors import ConventionError

TEMPLATE = "template"
MEDIAN_OF_FRAMES = "median-of-frames"
KINDS = (TEMPLATE, MEDIAN_OF_FRAMES)


@dataclass(frozen=True, eq=False)
class Reference:
    """One band's reference stamp and how it was made.

    Attributes:
        stamp: (H, W) float32, in the frames' flux unit per pixel, sky-subtracted, on the
            frames' pixel grid; NaN = missing pixel.
        kind: ``template`` (made by the survey apart from the frames: a coadd of earlier
            epochs) or ``median-of-frames`` (the fallback: the pixel-wise median of the
            object's own frames in the band).
        n_frames: frames coadded (0 when unknown).
        mjd_start, mjd_end: MJD span of the coadded frames (NaN when unknown).
        psf_fwhm: the stamp's PSF FWHM in arcsec (NaN when unknown: no PSF matching).
        sky_sigma: per-pixel background noise, in the frames' unit (NaN when unknown).
    """

    stamp: np.ndarray
    kind: str = TEMPLATE
    n_frames: int = 0
    mjd_start: float = float("nan")
    mjd_end: float = float("nan")
    psf_fwhm: float = float("nan")
    sky_sigma: float = float("nan")

    def __post_init__(self) -> None:
        stamp = np.asarray(self.stamp, dtype=np.float32)
        if stamp.ndim != 2:
            raise ConventionError(f"reference stamp must be (H, W), got shape {stamp.shape}")
        if self.kind not in KINDS:
            raise ConventionError(f"reference kind must be one of {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "stamp", stamp)
        object.__setattr__(self, "n_frames", int(self.n_frames))
        for name in ("mjd_start", "mjd_end", "psf_fwhm", "sky_sigma"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def overlaps(self, mjd: float) -> bool:
        """Whether the reference's frames reach ``mjd`` or later (a template that may hold
        the transient's own light, e.g. ZTF's ``jdendref`` after the first detection)."""
        return bool(np.isfinite(self.mjd_end) and self.mjd_end >= mjd)


PROVENANCE = ("n_frames", "mjd_start", "mjd_end", "psf_fwhm", "sky_sigma")


def reference_table(
    object_rows: Sequence[int], bands: Sequence[int], references: Sequence[Reference]
) -> Table:
    """References' metadata (no pixels) as a Table: ``object_row, band`` (id), ``kind``
    and the provenance columns, one row per reference."""
    table = Table(
        {
            "object_row": np.asarray(object_rows, dtype=np.int64),
            "band": np.asarray(bands, dtype=np.int16),
            "kind": np.asarray([r.kind for r in references], dtype=str),
        }
    )
    for name in PROVENANCE:
        table[name] = np.asarray([getattr(r, name) for r in references], dtype=float)
    return table


def median_stamp(frames: np.ndarray) -> np.ndarray:
    """(H, W) pixel-by-pixel median of (M, H, W) frames over the frames whose pixel is not
    NaN (NaN where none is): ``np.nanmedian(frames, axis=0)``, without its slow path for
    small stacks (a sort along the frames, NaN sorted last)."""
    if len(frames) and not np.isnan(frames).any():
        # The median along the last, contiguous axis: 1.4x faster than along the first.
        pixels = np.ascontiguousarray(frames.reshape(len(frames), -1).T)
        return np.median(pixels, axis=-1).reshape(frames.shape[1:])
    ordered = np.sort(frames, axis=0)
    valid = (~np.isnan(frames)).sum(axis=0)
    last = max(len(frames) - 1, 0)
    low = np.take_along_axis(ordered, np.clip((valid - 1) // 2, 0, last)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.clip(valid // 2, 0, last)[None], axis=0)[0]
    median = (low + high) / 2
    median[valid == 0] = np.nan
    return median
