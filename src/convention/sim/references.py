"""Reference (template) images as each survey built them: a coadd of earlier frames.

Each band's reference is the coadd of ``n`` frames taken over ``span`` days ending
``gap`` days before the survey's first season (all three drawn from the survey's
quantiles, ``SurveyDefinition.reference_*``): the host and whatever the point source was
doing then, through the coadd's sharper PSF, with the noise of ``n`` exposures in dark,
clear sky. Surveys coadd with outlier rejection (ZTF, Masci et al. 2019; Stripe 82, Annis
et al. 2014), so the point source is its median over those dates: an eclipsing binary
out of eclipse, an AGN's typical state, a supernova's nothing (a plain mean would carry
an eclipse caught on one of 15 dates into every difference). Its noise is drawn from its
own stream, independent of the frames'. A survey that resamples its templates
(``SurveyDefinition.reference_resampled``) has that noise correlated between neighbouring
pixels as its resampling makes it (``resampled_noise``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import correlate1d

from convention.bands import get_band
from convention.data.reference import TEMPLATE, Reference
from convention.sim.render import FrameConditions, render_frames, subtract_median_background
from convention.sim.sources import Source
from convention.sim.survey import SDSS2, SurveyDefinition


def draw_quantile(quantiles: Sequence[float], rng: np.random.Generator) -> float:
    """A draw from a distribution given by its quantiles at evenly spaced probabilities
    (0, ..., 1), linear between them (one value: that value)."""
    values = np.asarray(quantiles, dtype=float)
    if len(values) == 1:
        return float(values[0])
    return float(np.interp(rng.random(), np.linspace(0, 1, len(values)), values))


LANCZOS_ORDER = 3


def lanczos_weights(shift: float, order: int = LANCZOS_ORDER) -> np.ndarray:
    """(2 order,) the weights of a Lanczos interpolation at ``shift`` (0..1) pixels past a
    pixel, over the ``order`` pixels each side, summing to one."""
    x = np.arange(1 - order, order + 1) - shift
    weights = np.sinc(x) * np.sinc(x / order)
    return weights / weights.sum()


def resampled_noise(n_frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) noise of a coadd of ``n_frames`` frames each resampled onto the coadd's
    grid at its own sub-pixel offset, the coadd then resampled onto a visit's grid (both
    Lanczos-3), in units of the white noise it replaces: the same noise in any area of
    many pixels, less per pixel (0.83 of it), correlated between neighbours (0.20).

    ZTF's templates are made so (Masci et al. 2019: the reference is resampled onto each
    science image). The sky pixels of the real templates of ztf-alerts/unlabelled
    correlate 0.21 (g) and 0.24 (r) between neighbours (``benchmarks/ztf_realism.py``)
    and about -0.09 two pixels apart; this gives 0.20 and -0.13.
    """
    margin = 2 * LANCZOS_ORDER  # two resamplings, each reaching this far

    def resample(image: np.ndarray) -> np.ndarray:
        for axis in (0, 1):
            image = correlate1d(image, lanczos_weights(rng.random()), axis=axis)
        return image

    shape = (size + 2 * margin, size + 2 * margin)
    coadd = sum(resample(rng.standard_normal(shape)) for _ in range(n_frames))
    return resample(coadd / np.sqrt(n_frames))[margin:-margin, margin:-margin]


def render_references(
    survey: SurveyDefinition,
    source: Source,
    band_ids: np.ndarray,
    stamp_size: int,
    rng: np.random.Generator,
) -> tuple[dict[int, Reference], np.ndarray]:
    """Each band's reference of one object.

    Args:
        survey: its reference figures, bands, calibration and PSF.
        source: the object's source model (``flux(mjd, band_index, band_names)`` and
            ``host``), in SDSS ugriz as the frames' are.
        band_ids: (B,) band registry ids of the bands to make a reference for.
        stamp_size: stamp side in pixels.
        rng: the object's reference stream.

    Returns:
        band id -> Reference, and (B,) the point source's flux in each reference (its
        median over the coadd's dates, nanomaggies; zero for a supernova), in
        ``band_ids``' order.
    """
    ids = [int(b) for b in band_ids]
    survey_ids = [get_band(b).id for b in survey.bands]
    gains = survey.electrons_per_flux()
    sky_per_pixel = 10 ** (-0.4 * (np.asarray(survey.sky_dark) - 22.5)) * survey.pixel_scale**2
    host = source.host
    references, point_fluxes = {}, np.zeros(len(ids))
    for k, band_id in enumerate(ids):
        index = survey_ids.index(band_id)
        n = max(1, round(draw_quantile(survey.reference_frames, rng)))
        end = survey.season_starts[0] - draw_quantile(survey.reference_gap_days, rng)
        start = end - draw_quantile(survey.reference_span_days, rng)
        dates = np.sort(rng.uniform(start, end, n))
        source_index = SDSS2.band_index(survey.source_bands[index])
        point = source.flux(dates, np.full(n, source_index), survey.source_curves())
        point_fluxes[k] = float(np.median(point))
        fwhm = survey.reference_fwhm(survey.bands[index])
        conditions = FrameConditions(
            psf_fwhm=np.array([fwhm]),
            electrons_per_nmgy=np.array([gains[index] * n]),
            sky_electrons=np.array([sky_per_pixel[index] * gains[index] * n]),
            read_noise=survey.read_noise_e * np.sqrt(n),
            offset=np.zeros((1, 2)),
            # A template is warped to a visit's orientation: one of its own here.
            rotation_deg=rng.uniform(0.0, 360.0, 1) if survey.rotation else None,
        )
        seed = int(rng.integers(1, 2**31))
        stamp = render_frames(
            host.profile() if host is not None else None,
            np.array([host.flux()[source_index] if host is not None else 0.0]),
            np.array([point_fluxes[k]]),
            conditions,
            stamp_size,
            survey.pixel_scale,
            survey.moffat_beta,
            None if survey.reference_resampled else seed,
        )
        if survey.reference_resampled:
            stamp[0] += _pixel_noise(stamp[0], conditions) * resampled_noise(
                n, stamp_size, np.random.default_rng(seed)
            )
        sky_sigma = float(conditions.sky_sigma[0])
        if survey.median_background:
            sky_sigma = float(subtract_median_background(stamp)[0])
        references[band_id] = Reference(
            stamp[0],
            TEMPLATE,
            n_frames=n,
            mjd_start=float(dates[0]),
            mjd_end=float(dates[-1]),
            psf_fwhm=fwhm,
            sky_sigma=sky_sigma,
        )
    return references, point_fluxes


def _pixel_noise(stamp: np.ndarray, conditions: FrameConditions) -> np.ndarray:
    """(S, S) each pixel's white noise (sky, the source's Poisson noise, read noise) of a
    noiseless stamp in nanomaggies, under one frame's ``conditions``."""
    gain = float(conditions.electrons_per_nmgy[0])
    electrons = np.maximum(stamp.astype(np.float64), 0.0) * gain
    variance = conditions.sky_electrons[0] + electrons + conditions.read_noise**2
    return (np.sqrt(variance) / gain).astype(np.float32)
