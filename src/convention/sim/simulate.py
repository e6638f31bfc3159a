"""Simulate a survey's stamp series: plan the objects, observe them, render, store.

Every object draws from its own random stream, ``SeedSequence(seed, spawn_key=(1, k))`` for
the k-th object (its references from ``spawn_key=(3, k)``, so their noise is independent of
the frames'; its catalogue fields, sky position and host redshift from ``(4, k)``, ``(5,
k)`` and ``(6, k)``, so that adding one changes no frame), and the shared observing
calendar from ``spawn_key=(0,)``: the same seed gives the same bytes whatever the number
of worker processes.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table
from threadpoolctl import threadpool_limits

from convention.bands import get_band
from convention.classes import FOUR_CLASS
from convention.data.lightcurve import make_lightcurve
from convention.data.series import StampSeries
from convention.data.store import StoreWriter
from convention.errors import ConventionError
from convention.files import check_output_path
from convention.psf import moffat_effective_area
from convention.sim.cadence import Calendar, choose_visits, draw_calendar, strip_of
from convention.sim.catalog import FittedDistributions, ObjectSpec, read_sdss2_catalog
from convention.sim.host_redshift import host_redshift_fields
from convention.sim.neighbours import catalogue_fields
from convention.sim.population import SUPERNOVA_CLASSES, distance_ratios, limit_redshift
from convention.sim.references import render_references
from convention.sim.render import FrameConditions, render_frames, subtract_median_background
from convention.sim.sky import sky_position
from convention.sim.sources import AGN, CoreCollapseSN, SNIa, Source, VariableStar
from convention.sim.sources.host import HostGalaxy, draw_host
from convention.sim.survey import SDSS2, SurveyDefinition, get_survey

# Hosts further than this from the object fall outside a 32-pixel SDSS stamp (6.3"); a
# ZTF stamp is 64" wide.
MAX_HOST_SEPARATION = 30.0
# The light curve window is centred this many days after peak: SNe are followed longer
# after maximum than before.
WINDOW_AFTER_PEAK_DAYS = 10.0
DEFAULT_N_OBJECTS = 1000
# Every candidate was found by a search on difference images: a simulated supernova must
# peak brighter than the survey's search limit in one of its search bands. Parameters are
# redrawn until it does.
MAX_DRAWS = 20
# A magnitude-limited population (``survey.supernova_population``) keeps a drawn supernova
# in proportion to the volume it is seen in: ZTF's keeps 63% of the SNe Ia drawn and 26%
# of the others (300 of each), so more draws. Its luminosity is measured at this
# redshift before it is placed.
MAX_LIMITED_DRAWS = 100
PILOT_REDSHIFT = 0.05
MIN_REDSHIFT = 0.005
SUPERNOVA_MODELS = {"SNIa": SNIa, "SNOther": CoreCollapseSN}


@dataclass(frozen=True)
class SimulationSettings:
    """Everything that determines a simulated data set (the worker count does not)."""

    survey: str = "sdss2"
    catalog: str | None = None
    n_objects: int | None = None
    seed: int = 0
    stamp_size: int | None = None  # default: the survey's
    # The catalog's candidates of unknown type (SNTYPE 0) instead, stored unlabelled.
    unlabelled: bool = False

    def __post_init__(self) -> None:
        survey = get_survey(self.survey)
        if self.stamp_size is None:
            object.__setattr__(self, "stamp_size", survey.stamp_size)
        if self.catalog is not None and self.n_objects is not None:
            raise ConventionError("give either a catalog or a number of objects, not both")
        if self.unlabelled and self.catalog is None:
            raise ConventionError(
                "--unlabelled simulates a catalog's SNTYPE 0 candidates: give --catalog"
            )
        if self.n_objects is not None and self.n_objects <= 0:
            raise ConventionError(f"the number of objects must be positive, got {self.n_objects}")
        if not 8 <= self.stamp_size <= 256:
            raise ConventionError(f"stamp size must be 8..256 pixels, got {self.stamp_size}")
        if self.seed < 0:
            raise ConventionError(f"the seed must be 0 or more, got {self.seed}")

    def command(self) -> str:
        """The command line that reproduces this data set."""
        source = f"--catalog {self.catalog}" if self.catalog else f"--n-objects {self.n_objects}"
        source += " --unlabelled" if self.unlabelled else ""
        return (
            f"convention simulate --survey {self.survey} {source} --seed {self.seed} "
            f"--stamp-size {self.stamp_size}"
        )


def plan_objects(settings: SimulationSettings) -> list[ObjectSpec]:
    """The objects to simulate: the catalog's labelled candidates, or drawn ones."""
    if settings.catalog is not None:
        return read_sdss2_catalog(settings.catalog, settings.unlabelled)
    n = settings.n_objects if settings.n_objects is not None else DEFAULT_N_OBJECTS
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(2,)))
    return FittedDistributions.builtin().draw_specs(n, rng)


def _frame_conditions(
    survey: SurveyDefinition,
    calendar: Calendar,
    visit: np.ndarray,
    band_index: np.ndarray,
    rng: np.random.Generator,
) -> FrameConditions:
    ratio = survey.seeing_ratio(band_index)
    fwhm = calendar.seeing_r[visit] * ratio * np.exp(0.03 * rng.standard_normal(len(visit)))
    gain_clear = survey.electrons_per_flux()[band_index]
    gain = gain_clear * 10 ** (-0.4 * calendar.cloud_mag[visit])
    sky_mag = np.asarray(survey.sky_dark)[band_index] - np.where(
        calendar.bright[visit], np.asarray(survey.sky_bright_excess)[band_index], 0.0
    )
    sky_nmgy = 10 ** (-0.4 * (sky_mag - 22.5)) * survey.pixel_scale**2
    offset = survey.registration_jitter_pix * rng.standard_normal((len(visit), 2))
    rotation = rng.uniform(0.0, 360.0, len(visit)) if survey.rotation else None
    return FrameConditions(fwhm, gain, sky_nmgy * gain, survey.read_noise_e, offset, rotation)


def _source(
    spec: ObjectSpec,
    z: float,
    peak_mjd: float,
    survey: SurveyDefinition,
    dist: FittedDistributions,
    rng: np.random.Generator,
) -> Source:
    """The object's source model, in SDSS ugriz (magnitudes, hosts and star colours come
    from SDSS-II), seen at the survey's population distance."""
    scale = survey.population_distance_scale
    nearer = 5 * np.log10(scale)  # magnitudes brighter by the distance modulus
    mags = np.asarray(spec.host_mags, dtype=float) + nearer
    known_mags = bool(np.all(np.isfinite(mags)))
    sep = _catalogue_separation(spec, dist, rng) / scale
    if spec.label == "Variable":
        return VariableStar.draw(
            mags if known_mags else None, dist.draw(spec.label, "host_mag_r", rng) + nearer, rng
        )
    if spec.label == "AGN":
        mags = mags if known_mags else dist.draw_host_mags(spec.label, rng) + nearer
        nuclear = rng.uniform(0.5, 0.9)
        host = draw_host(mags - 2.5 * np.log10(1 - nuclear), min(sep, 1.0), rng, compact=True)
        return AGN.draw(z, mags - 2.5 * np.log10(nuclear), np.asarray(SDSS2.wavelengths), host, rng)
    host = _supernova_host(mags, sep, rng)
    return SUPERNOVA_MODELS[spec.label].draw(z, peak_mjd, spec.mw_ebv, host, rng)


def _catalogue_separation(
    spec: ObjectSpec, dist: FittedDistributions, rng: np.random.Generator
) -> float:
    """The host's separation (arcsec) as SDSS-II saw it: the catalogue's, else drawn."""
    return spec.host_sep if np.isfinite(spec.host_sep) else dist.draw(spec.label, "host_sep", rng)


def _supernova_host(mags: np.ndarray, sep: float, rng: np.random.Generator) -> HostGalaxy | None:
    """A supernova's host of these magnitudes ``sep`` arcsec away; None for a hostless
    candidate (magnitudes unknown) or one off the stamp."""
    if not np.all(np.isfinite(mags)) or sep >= MAX_HOST_SEPARATION:
        return None
    return draw_host(mags, sep, rng)


def simulate_object(
    spec: ObjectSpec,
    index: int,
    settings: SimulationSettings,
    calendar: Calendar,
    dist: FittedDistributions,
) -> StampSeries:
    """Observe and render one object.

    Args:
        spec: what is known of the object; unknowns are drawn from ``dist``.
        index: the object's position in the data set (selects its random stream).
        settings: survey, seed and stamp size.
        calendar: the survey's visits.
        dist: fitted distributions for the unknowns.
    """
    survey = get_survey(settings.survey)
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(1, index)))
    peak_mjd = survey_time(spec.peak_mjd, survey)
    if spec.label in SUPERNOVA_CLASSES and survey.supernova_population is not None:
        z, source = _limited_supernova(spec, peak_mjd, survey, dist, rng)
    else:
        z, source = _catalogue_source(spec, peak_mjd, survey, dist, rng)
    centre = peak_mjd + (WINDOW_AFTER_PEAK_DAYS if spec.label in SUPERNOVA_CLASSES else 0)
    n_visits = max(1, round(spec.n_obs / len(survey.bands)))
    visits = choose_visits(calendar, strip_of(spec.dec, survey), centre, n_visits, survey)
    n_bands = len(survey.bands)
    visit = np.repeat(visits, n_bands)
    band_index = np.tile(np.arange(n_bands), len(visits))
    keep = rng.random(len(visit)) >= survey.missing_frame_fraction
    visit_fraction = np.asarray(survey.band_visit_fraction)
    if visit_fraction.min() < 1:
        keep &= rng.random(len(visit)) < visit_fraction[band_index]
    lag_rank = band_index
    if survey.band_order_random:  # each visit's bands in an order of its own
        lag_rank = np.argsort(rng.random((len(visits), n_bands)), axis=1).ravel()
    mjd = calendar.mjd[visit] + np.asarray(survey.band_lag_days)[lag_rank]
    order = np.argsort(mjd[keep], kind="stable")
    visit, band_index, mjd = visit[keep][order], band_index[keep][order], mjd[keep][order]

    conditions = _frame_conditions(survey, calendar, visit, band_index, rng)
    source_index = np.array([SDSS2.band_index(b) for b in survey.source_bands])[band_index]
    point_flux = source.flux(mjd, source_index, survey.source_curves())
    host = source.host
    host_flux = host.flux()[source_index] if host is not None else np.zeros(len(mjd))
    band_ids = np.array([get_band(b).id for b in survey.bands])
    observed = np.unique(band_index)
    references, reference_flux = render_references(
        survey,
        source,
        band_ids[observed],
        settings.stamp_size,
        np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(3, index))),
    )
    history, metadata = None, {}
    if survey.catalogue:
        # The point source as catalogues made before the survey saw it (a supernova: none).
        before = survey.season_starts[0] - np.linspace(400.0, 30.0, 16)
        r_index = SDSS2.band_index(survey.source_bands[survey.band_index(survey.seeing_band)])
        quiescent = float(
            np.median(source.flux(before, np.full(16, r_index), survey.source_curves()))
        )
        metadata = catalogue_fields(
            spec.label,
            quiescent,
            host,
            np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(4, index))),
        )
    if survey.host_catalogue:
        metadata |= host_redshift_fields(
            z,
            np.isfinite(spec.redshift),
            host is not None,
            spec.mw_ebv,
            np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(6, index))),
            (spec.matched_redshift, spec.matched_redshift_error),
        )
    if survey.alerts:
        reference_point = np.zeros(len(survey.bands))
        reference_point[observed] = reference_flux
        photometry = alert_frames(
            point_flux, reference_point[band_index], band_index, conditions, survey, rng
        )
        history = alert_history(mjd, band_ids[band_index], photometry, survey)
        alerted = photometry.alerted
        mjd, band_index, point_flux, host_flux = (
            mjd[alerted],
            band_index[alerted],
            point_flux[alerted],
            host_flux[alerted],
        )
        conditions = conditions.select(alerted)
    seed = int(rng.integers(1, 2**31))
    frames = render_frames(
        host.profile() if host is not None else None,
        host_flux,
        point_flux,
        conditions,
        settings.stamp_size,
        survey.pixel_scale,
        survey.moffat_beta,
        seed,
    )
    _clip_at_ccd_edge(frames, rng, survey.edge_frame_fraction)
    sky_sigma = conditions.sky_sigma
    if survey.median_background:
        sky_sigma = subtract_median_background(frames)
    ra, dec = spec.ra, spec.dec
    if survey.sky_dec_range is not None:
        # Its own stream: the frames' bytes do not change (the cadence keeps the
        # catalogue's strip).
        stream = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(5, index)))
        ra, dec = sky_position(spec.label, survey.sky_dec_range, stream)
    psf_fwhm, zeropoint = conditions.psf_fwhm, conditions.zeropoint
    if not survey.reports_seeing:  # what the alert reader takes: the band's median
        medians = np.array([survey.seeing_fwhm_median(b) for b in survey.bands])
        psf_fwhm = medians[band_index]
    if survey.packet_zeropoint is not None:
        zeropoint = np.full(len(mjd), survey.packet_zeropoint)
    return StampSeries(
        frames=frames,
        mjd=mjd,
        band=band_ids[band_index],
        psf_fwhm=psf_fwhm,
        sky_sigma=sky_sigma,
        zeropoint=zeropoint,
        object_id=spec.object_id,
        ra=ra,
        dec=dec,
        redshift=z,
        label=spec.label if spec.labelled else None,
        survey=settings.survey,
        pixel_scale=survey.pixel_scale,
        subtype=source.subtype,
        true_flux=point_flux,
        references={b: references[b] for b in np.unique(band_ids[band_index]).tolist()},
        lightcurve=history,
        metadata=metadata,
    )


def _catalogue_source(
    spec: ObjectSpec,
    peak_mjd: float,
    survey: SurveyDefinition,
    dist: FittedDistributions,
    rng: np.random.Generator,
) -> tuple[float, Source]:
    """(redshift, source) at SDSS-II's redshifts times the survey's population distance
    scale, a supernova redrawn until it peaks brighter than the search limit."""
    scale = survey.population_distance_scale
    for _ in range(MAX_DRAWS):
        if spec.label == "Variable":
            z = 0.0
        elif np.isfinite(spec.redshift):
            # SDSS-II's catalogue redshifts are kept exactly (its bytes do not change).
            z = max(spec.redshift * scale, MIN_REDSHIFT) if scale != 1 else spec.redshift
        else:
            z = max(dist.draw(spec.label, "redshift", rng) * scale, MIN_REDSHIFT)
        source = _source(spec, z, peak_mjd, survey, dist, rng)
        if spec.label not in SUPERNOVA_CLASSES or _peak_mag(source, peak_mjd, survey) < (
            survey.search_limit_mag
        ):
            break
    return z, source


def _limited_supernova(
    spec: ObjectSpec,
    peak_mjd: float,
    survey: SurveyDefinition,
    dist: FittedDistributions,
    rng: np.random.Generator,
) -> tuple[float, SNIa | CoreCollapseSN]:
    """(redshift, source) of a supernova as a magnitude-limited search finds it
    (``convention.sim.population``): drawn at a pilot redshift, kept in proportion to the
    volume it is seen in, placed at a redshift of that volume with its host (the
    catalogue's, at its SDSS-II redshift) moved there, and redrawn if it then peaks fainter
    than the search limit. The last draw stands if none passes."""
    population = survey.supernova_population
    model = SUPERNOVA_MODELS[spec.label]
    for attempt in range(MAX_LIMITED_DRAWS):
        last = attempt == MAX_LIMITED_DRAWS - 1
        z_catalogue = (
            spec.redshift if np.isfinite(spec.redshift) else dist.draw(spec.label, "redshift", rng)
        )
        pilot = model.draw(PILOT_REDSHIFT, peak_mjd, spec.mw_ebv, None, rng)
        z_limit = limit_redshift(
            PILOT_REDSHIFT, _peak_mag(pilot, peak_mjd, survey), survey.search_limit_mag
        )
        if rng.random() >= population.acceptance(spec.label, z_limit) and not last:
            continue
        z = population.draw_redshift(spec.label, z_limit, rng)
        source = pilot.seen_at(z, _moved_host(spec, z_catalogue, z, dist, rng))
        if _peak_mag(source, peak_mjd, survey) < survey.search_limit_mag:
            break
    return z, source


def _moved_host(
    spec: ObjectSpec,
    z_catalogue: float,
    z: float,
    dist: FittedDistributions,
    rng: np.random.Generator,
) -> HostGalaxy | None:
    """The catalogue's host (SDSS-II's, at ``z_catalogue``) seen at ``z``: fainter or
    brighter by the luminosity distances, its separation scaled by the angular-diameter
    distances; None for a hostless candidate or one moved off the stamp."""
    added, widened = distance_ratios(max(z_catalogue, MIN_REDSHIFT), z)
    mags = np.asarray(spec.host_mags, dtype=float) + added
    return _supernova_host(mags, _catalogue_separation(spec, dist, rng) * widened, rng)


def _peak_mag(source: Source, peak_mjd: float, survey: SurveyDefinition) -> float:
    """Brightest magnitude of the source in the survey's search bands within -20..+60 days
    of the peak."""
    times = peak_mjd + np.arange(-20.0, 60.0, 1.0)
    searched = [
        SDSS2.band_index(survey.source_bands[survey.band_index(b)]) for b in survey.search_bands
    ]
    band_index = np.repeat(searched, len(times))
    flux = source.flux(np.tile(times, len(searched)), band_index, survey.source_curves())
    return 22.5 - 2.5 * np.log10(max(float(flux.max()), 1e-12))


def survey_time(mjd: float, survey: SurveyDefinition) -> float:
    """An SDSS-II date (the fitted distributions' and the catalogue's) at the same point of
    the survey's corresponding season."""
    if survey.seasons() == SDSS2.seasons():
        return mjd
    starts = np.asarray(SDSS2.season_starts)
    k = int(np.argmin(np.abs(starts + SDSS2.season_length_days / 2 - mjd)))
    stretch = survey.season_length_days / SDSS2.season_length_days
    return survey.season_starts[k % len(survey.season_starts)] + (mjd - starts[k]) * stretch


@dataclass(frozen=True)
class AlertPhotometry:
    """What difference imaging measured at each visit of an object, and which visits
    alerted.

    Attributes:
        alerted: (n,) indices of the visits an alert stream carries, in time order.
        flux: (M,) PSF flux on the difference image, nanomaggies.
        flux_err: (M,) its sky-limited 1-sigma error.
    """

    alerted: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray


def alert_frames(
    point_flux: np.ndarray,
    reference_flux: np.ndarray,
    band_index: np.ndarray,
    conditions: FrameConditions,
    survey: SurveyDefinition,
    rng: np.random.Generator,
) -> AlertPhotometry:
    """The difference photometry of every visit and the visits an alert stream would
    carry: the first n difference-image detections, n drawn uniformly from 1 to all.

    A detection is a PSF flux on the difference image (the source less its flux in the
    band's reference) at ``survey.alert_sigma`` or more times its error, either sign. The
    flux scatters by the white-noise ideal of sky-limited noise; its error (``flux_err``)
    is the survey pipeline's, ``photometry_error_factor`` times that. An object never
    detected keeps its most significant frame (every object of the data set alerted once).

    Args:
        point_flux: (M,) the point source's flux in each frame, nanomaggies.
        reference_flux: (M,) its flux in the reference of each frame's band.
        band_index: (M,) each frame's band, as an index of ``survey.bands``.
        conditions: the frames' observing conditions.
        survey: its ``pixel_scale``, ``moffat_beta``, ``alert_sigma`` and
            ``photometry_error_factor``.
        rng: the object's stream.
    """
    area = moffat_effective_area(conditions.psf_fwhm, survey.moffat_beta) / survey.pixel_scale**2
    noise = conditions.sky_sigma * np.sqrt(area)
    flux = point_flux - reference_flux + noise * rng.standard_normal(len(noise))
    sigma = noise * survey.error_factors(band_index)
    significance = np.abs(flux / sigma)
    detected = np.flatnonzero(significance >= survey.alert_sigma)
    if len(detected) == 0:
        alerted = np.array([int(np.argmax(significance))]) if len(sigma) else detected
    else:
        alerted = detected[: int(rng.integers(1, len(detected) + 1))]
    return AlertPhotometry(alerted, flux, sigma)


def alert_history(
    mjd: np.ndarray, band_ids: np.ndarray, photometry: AlertPhotometry, survey: SurveyDefinition
) -> Table:
    """The photometry the object's alerts carry together, as the alert reader gives real
    ones' (each packet holds the ``survey.history_days`` before it; a broker keeping the
    object's packets holds their union): every visit up to the last alert that lies within
    ``history_days`` before an alert (a gap between alerts longer than that is a gap in
    the union too), an alerted visit with its difference flux, any other as its 5-sigma
    limit (``flux = 0``, ``flux_err`` = limit / 5, ``detected = False``), or, where the
    survey's packets carry forced photometry (``survey.forced_history``), its measured
    difference flux (``detected = False``). Cut at an alert (``StampSeries.until``), it is
    what the object's packets up to that one carry.

    Args:
        mjd: (M,) every visit's MJD, sorted.
        band_ids: (M,) their band registry ids.
        photometry: ``alert_frames``' measurement of them.
        survey: its ``history_days`` and ``forced_history``.
    """
    alert_mjd = mjd[photometry.alerted]
    carried = mjd[: int(photometry.alerted[-1]) + 1]
    # The first alert at or after each visit: the earliest packet that could carry it.
    next_alert = alert_mjd[np.searchsorted(alert_mjd, carried, side="left")]
    rows = np.flatnonzero(carried >= next_alert - survey.history_days)
    detected = np.isin(rows, photometry.alerted)
    return make_lightcurve(
        mjd[rows],
        band_ids[rows],
        np.where(detected | survey.forced_history, photometry.flux[rows], 0.0),
        photometry.flux_err[rows],
        detected,
    )


def _clip_at_ccd_edge(frames: np.ndarray, rng: np.random.Generator, fraction: float) -> None:
    """Blank (NaN) a strip along one side of a few frames: stamps cut by a CCD edge."""
    size = frames.shape[-1]
    for k in np.flatnonzero(rng.random(len(frames)) < fraction):
        width = int(rng.integers(2, size // 3))
        side = int(rng.integers(4))
        target = frames[k] if side < 2 else frames[k].T
        if side % 2 == 0:
            target[:width] = np.nan
        else:
            target[-width:] = np.nan


_WORKER: dict = {}


def _init_worker(settings: SimulationSettings, calendar: Calendar, processes: int = 1) -> None:
    if processes > 1:
        # One BLAS thread per process: several multithreaded BLAS pools on two cores spend
        # their time spinning (5x slower).
        threadpool_limits(1)
    _WORKER.update(settings=settings, calendar=calendar, dist=FittedDistributions.builtin())


def _simulate_indexed(item: tuple[int, ObjectSpec]) -> StampSeries:
    index, spec = item
    return simulate_object(spec, index, _WORKER["settings"], _WORKER["calendar"], _WORKER["dist"])


def survey_calendar(settings: SimulationSettings) -> Calendar:
    """The observing calendar of a simulation (the same for every object)."""
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(0,)))
    return draw_calendar(get_survey(settings.survey), rng)


def simulate_series(
    settings: SimulationSettings, workers: int = 1, specs: list[ObjectSpec] | None = None
) -> Iterator[StampSeries]:
    """Yield the simulated objects in order, computed by ``workers`` processes."""
    specs = plan_objects(settings) if specs is None else specs
    calendar = survey_calendar(settings)
    items = list(enumerate(specs))
    if workers <= 1:
        _init_worker(settings, calendar)
        yield from map(_simulate_indexed, items)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers, _init_worker, (settings, calendar, workers)) as pool:
        yield from pool.imap(_simulate_indexed, items, chunksize=4)


def simulate(
    settings: SimulationSettings,
    out: str | Path,
    workers: int = 1,
    batch_size: int = 128,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Simulate a data set into a new store at ``out`` (atomically).

    Args:
        settings: what to simulate.
        out: path of the HDF5 store to write.
        workers: processes rendering in parallel; does not change the result.
        batch_size: objects per write (bounds memory).
        on_progress: called with (objects done, objects total) after each batch.
    """
    from convention.version import __version__

    if workers < 1:
        raise ConventionError(f"workers must be at least 1, got {workers}")
    out = check_output_path(out)
    survey = get_survey(settings.survey)
    specs = plan_objects(settings)
    provenance = {
        "command": settings.command(),
        "settings": asdict(settings),
        "package_version": __version__,
        "n_objects": len(specs),
    }
    with StoreWriter(
        out,
        survey=survey.name,
        bands=survey.bands,
        class_names=FOUR_CLASS.classes,
        stamp_shape=(settings.stamp_size, settings.stamp_size),
        pixel_scale=survey.pixel_scale,
        provenance=provenance,
    ) as writer:
        batch: list[StampSeries] = []
        done = 0
        for series in simulate_series(settings, workers, specs):
            batch.append(series)
            if len(batch) == batch_size:
                writer.append(batch)
                done += len(batch)
                batch = []
                if on_progress:
                    on_progress(done, len(specs))
        writer.append(batch)
        if on_progress:
            on_progress(len(specs), len(specs))
    return out
