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
from typing import TYPE_CHECKING

import light_curve as lcf
import numpy as np
from astropy.table import Table

from convention.data.series import references_of

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
    if n >= MIN_POINTS and len(np.unique(mjd)) >= MIN_POINTS:
        try:
            out[: len(_EXTRACTOR.names)] = _EXTRACTOR(mjd, flux, err, sorted=True, check=False)
        except ValueError:  # degenerate light curves (constant flux, ...)
            pass
    return out


def lightcurve_features(lc: Table, bands: Sequence[str]) -> np.ndarray:
    """The feature vector of one light curve (``feature_names(bands)`` order).

    Args:
        lc: light-curve Table (mjd, band, flux, flux_err, detected), sorted by mjd.
        bands: the bands, in the order features are laid out.
    """
    mjd = np.asarray(lc["mjd"], dtype=np.float64)
    flux = np.asarray(lc["flux"], dtype=np.float64)
    err = np.asarray(lc["flux_err"], dtype=np.float64)
    band = np.asarray(lc["band"]).astype(str)
    good = np.isfinite(mjd) & np.isfinite(flux) & np.isfinite(err) & (err > 0)
    per_band, peaks = [], []
    for name in bands:
        sel = good & (band == name)
        values = _band_features(mjd[sel], flux[sel], err[sel])
        per_band.append(values)
        peaks.append(values[len(_EXTRACTOR.names)])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = [a / b if b > 0 else np.nan for a, b in itertools.pairwise(peaks)]
    detected = np.asarray(lc["detected"], dtype=bool) & good
    duration = mjd[good][-1] - mjd[good][0] if good.any() else np.nan
    return np.concatenate([*per_band, ratios, [duration, detected.sum()]]).astype(np.float64)


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
    h, w = series.frames.shape[1:]
    y, x = np.mgrid[:h, :w]
    dy, dx = y - (h - 1) / 2, x - (w - 1) / 2
    r = np.hypot(dx, dy)
    references = references_of(series) if references is None else references
    out: list[float] = []
    for band in band_ids:
        keep = series.band == band
        if not keep.any():
            out += [np.nan] * len(SCENE_KINDS)
            continue
        stamp = np.nan_to_num(references[band].stamp)
        sums = [float(stamp[r <= radius].sum()) for radius in SCENE_RADII]
        light = np.where(r <= SCENE_MOMENT_RADIUS, np.clip(stamp, 0, None), 0)
        total = light.sum()
        if total > 0:
            cy, cx = (light * dy).sum() / total, (light * dx).sum() / total
            size = float(np.sqrt((light * ((dy - cy) ** 2 + (dx - cx) ** 2)).sum() / total))
            offset = float(np.hypot(cy, cx))
        else:
            offset = size = np.nan
        concentration = sums[0] / sums[-1] if sums[-1] > 0 else np.nan
        out += [*sums, concentration, offset, size, float(np.median(series.psf_fwhm[keep]))]
    return np.array(out, dtype=float)
