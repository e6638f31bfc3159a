"""Reference (template) images as each survey built them: a coadd of earlier frames.

Each band's reference is the coadd of ``n`` frames taken over ``span`` days ending
``gap`` days before the survey's first season (all three drawn from the survey's
quantiles, ``SurveyDefinition.reference_*``): the host and whatever the point source was
doing then, through the coadd's sharper PSF, with the noise of ``n`` exposures in dark,
clear sky. Surveys coadd with outlier rejection (ZTF, Masci et al. 2019; Stripe 82, Annis
et al. 2014), so the point source is its median over those dates: an eclipsing binary
out of eclipse, an AGN's typical state, a supernova's nothing (a plain mean would carry
an eclipse caught on one of 15 dates into every difference). Its noise is drawn from its
own stream, independent of the frames'.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
        point = source.flux(dates, np.full(n, source_index), SDSS2.bands)
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
        stamp = render_frames(
            host.profile() if host is not None else None,
            np.array([host.flux()[source_index] if host is not None else 0.0]),
            np.array([point_fluxes[k]]),
            conditions,
            stamp_size,
            survey.pixel_scale,
            survey.moffat_beta,
            int(rng.integers(1, 2**31)),
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
