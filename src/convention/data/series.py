"""StampSeries: the image time series of one sky position.

Frames are single-band stamps sorted by MJD, bands interleaved; each frame carries its band
id and its observing conditions. Pixels are calibrated, sky-subtracted flux per pixel (SDSS:
nanomaggies); missing pixels are NaN.

The data model imports nothing above it: an object's light curve is
``convention.lightcurves.lightcurve_of(series)``, its figure
``convention.plotting.plot_series(series)``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from astropy.table import Table

from convention.bands import get_band
from convention.data.reference import MEDIAN_OF_FRAMES, Reference, median_stamp
from convention.errors import ConventionError

PER_FRAME = ("mjd", "band", "psf_fwhm", "sky_sigma", "zeropoint")


MAX_OBJECT_ID = 1000  # characters


def _check_object_id(object_id: str) -> None:
    """An object id is text a store, a table and a file name can hold: not empty, no
    control character (a NUL, a newline), at most ``MAX_OBJECT_ID`` characters.

    Raises:
        ConventionError: naming the id (shortened) and the cause.
    """
    shown = repr(object_id[:40] + ("..." if len(object_id) > 40 else ""))
    if not object_id:
        raise ConventionError("an empty object id")
    if len(object_id) > MAX_OBJECT_ID:
        raise ConventionError(
            f"object id {shown} is {len(object_id)} characters, over {MAX_OBJECT_ID}"
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in object_id):
        raise ConventionError(f"object id {shown} holds a control character or undecodable byte")


@dataclass(eq=False)
class StampSeries:
    """One object's stamps and their per-frame metadata.

    Attributes:
        frames: (M, H, W) float32 flux per pixel, sky-subtracted; NaN = missing pixel.
        mjd: (M,) float64 Modified Julian Date of each frame, non-decreasing.
        band: (M,) int16 band ids of the band registry (``convention.bands``), never 0.
        psf_fwhm: (M,) float32 PSF full width at half maximum in arcsec.
        sky_sigma: (M,) float32 per-pixel background noise, in the pixels' unit.
        zeropoint: (M,) float32 AB magnitude of a source giving one count of the frame's
            raw image in the exposure (photo-electrons for simulated data, DN for ZTF);
            NaN when unknown.
        object_id: identifier, unique within a data set.
        ra, dec: position in degrees (ICRS).
        redshift: redshift, NaN when unknown (0 for Galactic objects).
        label: class name, or None when unlabelled.
        survey: survey of the frames (``sdss2``, ``ztf``, ...).
        pixel_scale: arcsec per pixel.
        subtype: the simulated source model (``IIP``, ``RRab``, ...), where known.
        true_flux: (M,) injected flux of the variable point source in the pixels' unit,
            for simulated data (NaN elsewhere).
        channels: extra images of every frame by name (``difference``, ``template``), each
            (M, H, W) float32 in the frames' unit, read by the input kinds that declare
            them (``convention.inputs``).
        lightcurve: the source's own photometry, where the input carries it (alerts'
            previous detections, PLAsTiCC light curves): Table of ``mjd, band, flux,
            flux_err, detected`` in the frames' flux unit, sorted by mjd; None otherwise.
        references: band id -> the band's reference (template) stamp with its provenance,
            where the source gives one (``convention.data.reference``; the others fall
            back to the median of the band's frames when used, ``references_of``).
        metadata: the source's catalogue fields of the object by name, as of its latest
            frame (``convention.metadata`` names them, with units); a field not measured
            is absent or NaN.
    """

    frames: np.ndarray
    mjd: np.ndarray
    band: np.ndarray
    psf_fwhm: np.ndarray
    sky_sigma: np.ndarray
    zeropoint: np.ndarray
    object_id: str
    ra: float = float("nan")
    dec: float = float("nan")
    redshift: float = float("nan")
    label: str | None = None
    survey: str = "unknown"
    pixel_scale: float = float("nan")
    subtype: str | None = None
    true_flux: np.ndarray | None = field(default=None)
    channels: dict[str, np.ndarray] = field(default_factory=dict)
    lightcurve: Table | None = None
    references: dict[int, Reference] = field(default_factory=dict)
    metadata: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.object_id = str(self.object_id)
        _check_object_id(self.object_id)
        self.metadata = {str(name): float(value) for name, value in self.metadata.items()}
        self.frames = np.asarray(self.frames, dtype=np.float32)
        if self.frames.ndim != 3:
            raise ConventionError(
                f"frames must be (M, H, W), got shape {self.frames.shape}", obj=self.object_id
            )
        m = self.frames.shape[0]
        self.mjd = np.asarray(self.mjd, dtype=np.float64)
        self.band = np.asarray(
            [get_band(b, self.survey).id for b in np.atleast_1d(self.band)]
            if np.asarray(self.band).dtype.kind in "USO"
            else self.band,
            dtype=np.int16,
        ).reshape(-1)
        for name in ("psf_fwhm", "sky_sigma", "zeropoint"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float32).reshape(-1))
        if self.true_flux is None:
            self.true_flux = np.full(m, np.nan, dtype=np.float32)
        self.true_flux = np.asarray(self.true_flux, dtype=np.float32).reshape(-1)
        for name in (*PER_FRAME, "true_flux"):
            n = len(getattr(self, name))
            if n != m:
                raise ConventionError(f"{name} has {n} values for {m} frames", obj=self.object_id)
        self.channels = {
            name: np.asarray(image, dtype=np.float32) for name, image in self.channels.items()
        }
        for name, image in self.channels.items():
            if image.shape != self.frames.shape:
                raise ConventionError(
                    f"channel {name!r} has shape {image.shape}, frames {self.frames.shape}",
                    obj=self.object_id,
                )
        self.references = {int(band): ref for band, ref in self.references.items()}
        for band, ref in self.references.items():
            if band <= 0:
                raise ConventionError("band id 0 is padding, not a band", obj=self.object_id)
            if ref.stamp.shape != self.frames.shape[1:]:
                raise ConventionError(
                    f"the {get_band(band).name} reference has shape {ref.stamp.shape}, "
                    f"frames {self.frames.shape[1:]}",
                    obj=self.object_id,
                )
        if m and not np.all(np.isfinite(self.mjd)):
            raise ConventionError("non-finite MJD", obj=self.object_id)
        if m > 1 and np.any(np.diff(self.mjd) < 0):
            raise ConventionError("frames are not sorted by MJD", obj=self.object_id)
        if np.any(self.band <= 0):
            raise ConventionError("band id 0 is padding, not a band", obj=self.object_id)

    @classmethod
    def from_frames(cls, frames: np.ndarray, mjd: np.ndarray, **kwargs) -> StampSeries:
        """Build a series from frames in any order: sorts them by MJD (stably)."""
        order = np.argsort(np.asarray(mjd, dtype=np.float64), kind="stable")
        per_frame = {
            k: np.asarray(v)[order]
            for k, v in kwargs.items()
            if k in (*PER_FRAME, "true_flux") and v is not None
        }
        rest = {k: v for k, v in kwargs.items() if k not in per_frame}
        if "channels" in rest:
            rest["channels"] = {k: np.asarray(v)[order] for k, v in rest["channels"].items()}
        return cls(np.asarray(frames)[order], np.asarray(mjd)[order], **per_frame, **rest)

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> StampSeries:
        """Select frames; always returns a StampSeries (an int gives a one-frame series)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        if isinstance(index, np.ndarray) and index.dtype == bool:
            index = np.flatnonzero(index)
        if not isinstance(index, slice):
            index = np.sort(np.asarray(index, dtype=np.int64))
        selected = {k: getattr(self, k)[index] for k in (*PER_FRAME, "true_flux")}
        channels = {k: v[index] for k, v in self.channels.items()}
        return replace(self, frames=self.frames[index], channels=channels, **selected)

    def until(self, mjd: float) -> StampSeries:
        """What was observed up to ``mjd`` (inclusive): the frames, and the light curve's
        points, taken by then; what an early classification sees.

        Raises:
            ConventionError: no frame by then.
        """
        keep = self.mjd <= mjd
        if not keep.any():
            first = f"its first at MJD {self.mjd[0]:.5f}" if len(self) else "it has none"
            raise ConventionError(f"no frame by MJD {mjd:.5f} ({first})", obj=self.object_id)
        cut = self[keep]
        if self.lightcurve is not None:
            cut.lightcurve = self.lightcurve[np.asarray(self.lightcurve["mjd"]) <= mjd]
        return cut

    def nights(self) -> np.ndarray:
        """(M,) the night of each frame: its MJD rounded down (observing nights in the
        Americas, where UT midnight falls before dusk, do not straddle it)."""
        return np.floor(self.mjd).astype(np.int64)

    def first_nights(self, k: int) -> StampSeries:
        """The frames (and light-curve points) of the first ``k`` observing nights.

        Raises:
            ConventionError: ``k`` below 1, or a series without frames.
        """
        if k < 1:
            raise ConventionError(f"nights must be at least 1, got {k}", obj=self.object_id)
        if not len(self):
            raise ConventionError("no frame in the first night (it has none)", obj=self.object_id)
        nights = np.unique(self.nights())
        return self.until(float(nights[min(k, len(nights)) - 1] + 1) - 1e-9)

    def late_references(self) -> list[int]:
        """Band ids whose reference's frames reach the first frame or later (a template
        that may hold the object's own light): kept, and flagged here."""
        first = float(self.mjd[0]) if len(self) else float("inf")
        return [band for band, ref in sorted(self.references.items()) if ref.overlaps(first)]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(M, H, W)."""
        return tuple(self.frames.shape)

    @property
    def band_names(self) -> list[str]:
        """Canonical band name of every frame."""
        return [get_band(int(b)).name for b in self.band]

    def select_band(self, band: str) -> StampSeries:
        """The frames of one band (any spelling the band registry accepts)."""
        return self[self.band == get_band(band, self.survey).id]

    def to_table(self) -> Table:
        """Per-frame metadata as an astropy Table (one row per frame, no pixels)."""
        table = Table(
            {
                "mjd": self.mjd,
                "band": self.band_names,
                "psf_fwhm": self.psf_fwhm,
                "sky_sigma": self.sky_sigma,
                "zeropoint": self.zeropoint,
                "true_flux": self.true_flux,
            }
        )
        table["psf_fwhm"].unit = "arcsec"
        table.meta.update(
            object_id=self.object_id,
            ra=self.ra,
            dec=self.dec,
            redshift=self.redshift,
            label=self.label,
            survey=self.survey,
        )
        return table

    def __repr__(self) -> str:
        m, h, w = self.shape
        bands = ",".join(sorted({get_band(int(b)).letter for b in self.band}))
        span = f"{self.mjd[0]:.1f}-{self.mjd[-1]:.1f}" if m else "empty"
        return (
            f"StampSeries({self.object_id!r}, label={self.label!r}, {m} frames {h}x{w}, "
            f"bands={bands}, mjd={span})"
        )


def median_reference(series: StampSeries, band: int) -> Reference:
    """The fallback reference of one band: the median of the series' frames in it (its PSF
    and noise left unknown, so it is subtracted as it is, without PSF matching)."""
    keep = series.band == band
    return Reference(
        median_stamp(series.frames[keep]),
        MEDIAN_OF_FRAMES,
        n_frames=int(keep.sum()),
        mjd_start=float(series.mjd[keep].min()),
        mjd_end=float(series.mjd[keep].max()),
    )


def references_of(series: StampSeries) -> dict[int, Reference]:
    """Band id -> reference of every band the series has frames in: the source's
    reference where it gave one, else the median of the frames (``median-of-frames``)."""
    return {
        int(band): series.references.get(int(band)) or median_reference(series, int(band))
        for band in np.unique(series.band)
    }
