"""The practitioners' features of an object: its light curve's (ALeRCE, Avocado: per-band
statistics from the ``light-curve`` package and a few colours between bands) and its
static scene's (each band's reference stamp: the host). The boosting baseline
(``baselines.gbm``) and the ``features`` input kind both read them.

Light-curve features are computed on difference fluxes (``lightcurves.lightcurve_of``: the
object's forced photometry on its stamps less each band's reference stamp, or its own
light curve), so a static host does not enter. A band with too few observations gives NaN
features, which gradient boosting handles.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import light_curve as lcf
import numpy as np
from astropy.cosmology import Planck18
from astropy.table import Table

from convention.data.series import references_of
from convention.metadata import get_field
from convention.photometry import NANOMAGGY_ZEROPOINT

if TYPE_CHECKING:
    from convention.data.reference import Reference
    from convention.data.series import StampSeries

MIN_POINTS = 5  # the periodogram and the linear fit need a handful of points

_EXTRACTOR = lcf.Extractor(
    lcf.Amplitude(),
    lcf.BeyondNStd(1.0),
    lcf.LinearFit(),
    lcf.StetsonK(),
    lcf.Skew(),
    lcf.Kurtosis(),
    lcf.MaximumSlope(),
    lcf.InterPercentileRange(0.1),
    lcf.ReducedChi2(),
    lcf.WeightedMean(),
    lcf.Periodogram(peaks=2, max_freq_factor=2.0),
    lcf.StandardDeviation(),
)
PER_BAND = (*tuple(_EXTRACTOR.names), "peak_flux", "peak_snr", "n_obs", "rise_days", "fall_days")
GLOBAL = ("duration_days", "n_detected")


def feature_names(bands: Sequence[str]) -> list[str]:
    """Names of the features, band by band then the colours and global features."""
    names = [f"{b}:{f}" for b in bands for f in PER_BAND]
    names += [f"peak_ratio:{a}/{b}" for a, b in itertools.pairwise(bands)]
    return names + list(GLOBAL)


def _band_features(mjd: np.ndarray, flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    out = np.full(len(PER_BAND), np.nan)
    n = len(mjd)
    out[len(_EXTRACTOR.names) + 2] = n
    if n == 0:
        return out
    peak = int(np.argmax(flux))
    out[len(_EXTRACTOR.names)] = flux[peak]
    out[len(_EXTRACTOR.names) + 1] = flux[peak] / err[peak]
    if flux[peak] > 0:  # rise and fall to half the peak; a band never above 0 has neither
        half = flux >= flux[peak] / 2
        out[len(_EXTRACTOR.names) + 3] = mjd[peak] - mjd[half][0]
        out[len(_EXTRACTOR.names) + 4] = mjd[half][-1] - mjd[peak]
    if n >= MIN_POINTS and np.count_nonzero(np.diff(mjd)) + 1 >= MIN_POINTS:  # mjd sorted
        try:
            out[: len(_EXTRACTOR.names)] = _EXTRACTOR(mjd, flux, err, sorted=True, check=False)
        except ValueError:  # degenerate light curves (constant flux, ...)
            pass
    return out


def lightcurve_features(
    lc: Table, bands: Sequence[str], rows: np.ndarray | None = None
) -> np.ndarray:
    """The feature vector of one light curve (``feature_names(bands)`` order).

    Args:
        lc: light-curve Table (mjd, band, flux, flux_err, detected), sorted by mjd.
        bands: the bands, in the order features are laid out.
        rows: the rows of ``lc`` to read (None: all): the same as ``lc[rows]`` without
            making that Table.
    """
    every = slice(None) if rows is None else rows
    mjd = np.asarray(lc["mjd"], dtype=np.float64)[every]
    flux = np.asarray(lc["flux"], dtype=np.float64)[every]
    err = np.asarray(lc["flux_err"], dtype=np.float64)[every]
    band = np.asarray(lc["band"])[every].astype(str)
    good = np.isfinite(mjd) & np.isfinite(flux) & np.isfinite(err) & (err > 0)
    per_band, peaks = [], []
    for name in bands:
        sel = good & (band == name)
        values = _band_features(mjd[sel], flux[sel], err[sel])
        per_band.append(values)
        peaks.append(values[len(_EXTRACTOR.names)])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = [a / b if b > 0 else np.nan for a, b in itertools.pairwise(peaks)]
    detected = np.asarray(lc["detected"], dtype=bool)[every] & good
    duration = mjd[good][-1] - mjd[good][0] if good.any() else np.nan
    return np.concatenate([*per_band, ratios, [duration, detected.sum()]]).astype(np.float64)


# An absolute magnitude needs a band's peak detected and a host beyond the Galaxy's
# neighbourhood (PLAsTiCC writes 0 for a Galactic object's host redshift).
ABSOLUTE_MIN_SNR = 3.0
ABSOLUTE_MIN_REDSHIFT = 1e-3


def absolute_feature_names(bands: Sequence[str]) -> list[str]:
    """Names of ``absolute_peak_magnitudes``, band by band."""
    return [f"{b}:absolute peak magnitude" for b in bands]


@lru_cache(maxsize=1)
def _distance_modulus_grid() -> tuple[np.ndarray, np.ndarray]:
    """Planck18's distance modulus (mag) on a log grid of redshifts up to the metadata's
    largest (4): made once, read by interpolation (within 1e-6 mag of astropy's)."""
    z = np.geomspace(ABSOLUTE_MIN_REDSHIFT, get_field("host_redshift").high, 4000)
    return np.log(z), Planck18.distmod(z).value


def distance_modulus(redshift: float) -> float:
    """Planck18's distance modulus (mag) of ``redshift``; NaN below
    ``ABSOLUTE_MIN_REDSHIFT`` or not finite (no extragalactic host)."""
    if not (np.isfinite(redshift) and redshift >= ABSOLUTE_MIN_REDSHIFT):
        return float("nan")
    log_z, modulus = _distance_modulus_grid()
    return float(np.interp(np.log(redshift), log_z, modulus))


def absolute_peak_magnitudes(
    lc: Table, bands: Sequence[str], redshift: float, rows: np.ndarray | None = None
) -> np.ndarray:
    """Each band's brightest difference flux as an AB magnitude less the distance
    modulus of the host's ``redshift`` (``distance_modulus``; no K-correction): the
    absolute brightness that tells an SN Ia (about -19) from most core-collapse supernovae,
    a product of flux and distance that a network's separately scaled inputs give it only
    through its layers. NaN where the band's peak is below ``ABSOLUTE_MIN_SNR`` sigma, or
    without a redshift (NaN: not measured, or a Galactic object).

    Args:
        lc: light-curve Table (mjd, band, flux, flux_err), flux in nanomaggies.
        bands: the bands, in the order of the result.
        redshift: the host's redshift (``convention.metadata``'s ``host_redshift``).
        rows: the rows of ``lc`` to read (None: all).

    Returns:
        (len(bands),) float64 absolute magnitudes.
    """
    out = np.full(len(bands), np.nan)
    modulus = distance_modulus(redshift)
    if not np.isfinite(modulus):
        return out
    every = slice(None) if rows is None else rows
    flux = np.asarray(lc["flux"], dtype=np.float64)[every]
    err = np.asarray(lc["flux_err"], dtype=np.float64)[every]
    band = np.asarray(lc["band"])[every].astype(str)
    with np.errstate(invalid="ignore", divide="ignore"):
        detected = np.isfinite(flux) & (flux >= ABSOLUTE_MIN_SNR * err) & (err > 0)
    for k, name in enumerate(bands):
        peaks = flux[detected & (band == name)]
        if peaks.size:
            out[k] = NANOMAGGY_ZEROPOINT - 2.5 * np.log10(peaks.max()) - modulus
    return out


SCENE_RADII = (1.5, 3.0, 6.0)  # pixels
SCENE_MOMENT_RADIUS = 8.0  # pixels
SCENE_KINDS = (
    "light r<1.5",
    "light r<3",
    "light r<6",
    "concentration",
    "offset",
    "size",
    "seeing",
)


def scene_feature_names(bands: Sequence[str]) -> list[str]:
    """Names of ``scene_features``, band by band."""
    return [f"{b}:scene {kind}" for b in bands for kind in SCENE_KINDS]


@lru_cache(maxsize=16)
def _scene_geometry(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For stamps of ``shape``: (P, len(SCENE_RADII)) the apertures as weights, (P,) the
    moments' disc, and (P, 3) each pixel's dy, dx and squared radius from the centre."""
    h, w = shape
    y, x = np.mgrid[:h, :w]
    dy, dx = (y - (h - 1) / 2).ravel(), (x - (w - 1) / 2).ravel()
    r = np.hypot(dx, dy)
    apertures = np.stack([r <= radius for radius in SCENE_RADII], axis=1).astype(np.float64)
    disc = (r <= SCENE_MOMENT_RADIUS).astype(np.float64)
    offsets = np.stack([dy, dx, dy**2 + dx**2], axis=1)
    for array in (apertures, disc, offsets):
        array.flags.writeable = False
    return apertures, disc, offsets


def _band_medians(values: np.ndarray, band: np.ndarray) -> np.ndarray:
    """(max(band) + 1,) the median of ``values`` in each band id, in their dtype, as
    ``np.median`` gives it (NaN for a band with a NaN value, or without values): one sort
    for every band, where ``np.median`` per band costs tens of microseconds."""
    counts = np.bincount(band, minlength=int(band.max(initial=0)) + 1)
    if not len(values):
        return np.full(len(counts), np.nan)
    order = np.lexsort((values, band))
    start = np.cumsum(counts) - counts
    low = order[np.clip(start + (counts - 1) // 2, 0, len(order) - 1)]
    high = order[np.clip(start + counts // 2, 0, len(order) - 1)]
    undefined = (counts == 0) | (np.bincount(band, np.isnan(values), len(counts)) > 0)
    return np.where(undefined, np.nan, (values[low] + values[high]) / 2)


def scene_features(
    series: StampSeries,
    band_ids: Sequence[int],
    references: Mapping[int, Reference] | None = None,
) -> np.ndarray:
    """The static scene (host galaxy) of each band's reference stamp: light within
    ``SCENE_RADII`` pixels of the centre (the frames' flux unit), concentration (first
    over last sum), centroid offset and RMS size of the positive light within
    ``SCENE_MOMENT_RADIUS`` (pixels), and the band's median PSF FWHM (arcsec); NaN for a
    band without frames. The practitioners' host features, for the hybrid boosting row.
    ``references``: the references already made (``data.reference.references_of``, else
    made here).

    Returns:
        (len(band_ids) * len(SCENE_KINDS),) float64, band by band.
    """
    out = np.full((len(band_ids), len(SCENE_KINDS)), np.nan)
    present = [k for k, band in enumerate(band_ids) if (series.band == band).any()]
    if not present:
        return out.ravel()
    references = references_of(series) if references is None else references
    apertures, disc, offsets = _scene_geometry(series.frames.shape[1:])
    stamps = np.stack([references[band_ids[k]].stamp for k in present]).reshape(len(present), -1)
    stamps = np.nan_to_num(stamps.astype(np.float64))
    sums = stamps @ apertures
    light = np.clip(stamps, 0, None) * disc
    total = light.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy, cx, r2 = (light @ offsets).T / total
        size = np.sqrt(np.clip(r2 - cy**2 - cx**2, 0, None))
        concentration = np.where(sums[:, -1] > 0, sums[:, 0] / sums[:, -1], np.nan)
    lit = total > 0
    out[present, : len(SCENE_RADII)] = sums
    out[present, len(SCENE_RADII)] = concentration
    out[present, len(SCENE_RADII) + 1] = np.where(lit, np.hypot(cy, cx), np.nan)
    out[present, len(SCENE_RADII) + 2] = np.where(lit, size, np.nan)
    out[present, len(SCENE_RADII) + 3] = _band_medians(series.psf_fwhm, series.band)[
        np.asarray(band_ids)[present]
    ]
    return out.ravel()
