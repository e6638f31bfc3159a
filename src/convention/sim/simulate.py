"""Simulate a survey's stamp series: plan the objects, observe them, render, store.

Every object draws from its own random stream, ``SeedSequence(seed, spawn_key=(1, k))`` for
the k-th object, and the shared observing calendar from ``spawn_key=(0,)``: the same seed
gives the same bytes whatever the number of worker processes.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from convention.bands import get_band
from convention.classes import FOUR_CLASS
from convention.data.series import StampSeries
from convention.data.store import StoreWriter
from convention.errors import ConventionError
from convention.files import check_output_path
from convention.sim.cadence import Calendar, choose_visits, draw_calendar, strip_of
from convention.sim.catalog import FittedDistributions, ObjectSpec, read_sdss2_catalog
from convention.sim.render import FrameConditions, render_frames
from convention.sim.sources import AGN, CoreCollapseSN, SNIa, VariableStar
from convention.sim.sources.host import draw_host
from convention.sim.survey import SurveyDefinition, get_survey

# Hosts further than this from the object fall outside a 32-pixel SDSS stamp (6.3").
MAX_HOST_SEPARATION = 30.0
# The light curve window is centred this many days after peak: SNe are followed longer
# after maximum than before.
WINDOW_AFTER_PEAK_DAYS = 10.0
DEFAULT_N_OBJECTS = 1000
# Every SDSS-II candidate was found by the SN search on difference images: a simulated
# supernova must peak brighter than this in g, r or i (assumed search depth, about the
# single-epoch r-band limit; Frieman et al. 2008). Parameters are redrawn until it does.
DETECTION_LIMIT_MAG = 22.5
MAX_DRAWS = 20
SUPERNOVAE = ("SNIa", "SNOther")


@dataclass(frozen=True)
class SimulationSettings:
    """Everything that determines a simulated data set (the worker count does not)."""

    survey: str = "sdss2"
    catalog: str | None = None
    n_objects: int | None = None
    seed: int = 0
    stamp_size: int = 32

    def __post_init__(self) -> None:
        get_survey(self.survey)
        if self.catalog is not None and self.n_objects is not None:
            raise ConventionError("give either a catalog or a number of objects, not both")
        if self.n_objects is not None and self.n_objects <= 0:
            raise ConventionError(f"the number of objects must be positive, got {self.n_objects}")
        if not 8 <= self.stamp_size <= 256:
            raise ConventionError(f"stamp size must be 8..256 pixels, got {self.stamp_size}")
        if self.seed < 0:
            raise ConventionError(f"the seed must be 0 or more, got {self.seed}")

    def command(self) -> str:
        """The command line that reproduces this data set."""
        source = f"--catalog {self.catalog}" if self.catalog else f"--n-objects {self.n_objects}"
        return (
            f"convention simulate --survey {self.survey} {source} --seed {self.seed} "
            f"--stamp-size {self.stamp_size}"
        )


def plan_objects(settings: SimulationSettings) -> list[ObjectSpec]:
    """The objects to simulate: the catalog's labelled candidates, or drawn ones."""
    if settings.catalog is not None:
        return read_sdss2_catalog(settings.catalog)
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
    wave = np.asarray(survey.wavelengths)
    ratio = (wave[band_index] / wave[survey.band_index("sdss::r")]) ** survey.seeing_band_exponent
    fwhm = calendar.seeing_r[visit] * ratio * np.exp(0.03 * rng.standard_normal(len(visit)))
    gain_clear = survey.electrons_per_flux()[band_index]
    gain = gain_clear * 10 ** (-0.4 * calendar.cloud_mag[visit])
    sky_mag = np.asarray(survey.sky_dark)[band_index] - np.where(
        calendar.bright[visit], np.asarray(survey.sky_bright_excess)[band_index], 0.0
    )
    sky_nmgy = 10 ** (-0.4 * (sky_mag - 22.5)) * survey.pixel_scale**2
    offset = survey.registration_jitter_pix * rng.standard_normal((len(visit), 2))
    return FrameConditions(fwhm, gain, sky_nmgy * gain, survey.read_noise_e, offset)


def _source(
    spec: ObjectSpec,
    z: float,
    survey: SurveyDefinition,
    dist: FittedDistributions,
    rng: np.random.Generator,
):
    mags = np.asarray(spec.host_mags, dtype=float)
    known_mags = bool(np.all(np.isfinite(mags)))
    sep = spec.host_sep if np.isfinite(spec.host_sep) else dist.draw(spec.label, "host_sep", rng)
    if spec.label == "Variable":
        return VariableStar.draw(
            mags if known_mags else None, dist.draw(spec.label, "host_mag_r", rng), rng
        )
    if spec.label == "AGN":
        mags = mags if known_mags else dist.draw_host_mags(spec.label, rng)
        nuclear = rng.uniform(0.5, 0.9)
        host = draw_host(mags - 2.5 * np.log10(1 - nuclear), min(sep, 1.0), rng, compact=True)
        return AGN.draw(
            z, mags - 2.5 * np.log10(nuclear), np.asarray(survey.wavelengths), host, rng
        )
    host = draw_host(mags, sep, rng) if known_mags and sep < MAX_HOST_SEPARATION else None
    model = SNIa if spec.label == "SNIa" else CoreCollapseSN
    return model.draw(z, spec.peak_mjd, spec.mw_ebv, host, rng)


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
    for _ in range(MAX_DRAWS):
        if spec.label == "Variable":
            z = 0.0
        elif np.isfinite(spec.redshift):
            z = spec.redshift
        else:
            z = max(dist.draw(spec.label, "redshift", rng), 0.005)
        source = _source(spec, z, survey, dist, rng)
        if spec.label not in SUPERNOVAE or _peak_mag(source, spec.peak_mjd, survey) < (
            DETECTION_LIMIT_MAG
        ):
            break
    centre = spec.peak_mjd + (WINDOW_AFTER_PEAK_DAYS if spec.label in SUPERNOVAE else 0)
    n_visits = max(1, round(spec.n_obs / len(survey.bands)))
    visits = choose_visits(calendar, strip_of(spec.dec, survey), centre, n_visits, survey)
    n_bands = len(survey.bands)
    visit = np.repeat(visits, n_bands)
    band_index = np.tile(np.arange(n_bands), len(visits))
    keep = rng.random(len(visit)) >= survey.missing_frame_fraction
    mjd = calendar.mjd[visit] + np.asarray(survey.band_lag_days)[band_index]
    order = np.argsort(mjd[keep], kind="stable")
    visit, band_index, mjd = visit[keep][order], band_index[keep][order], mjd[keep][order]

    conditions = _frame_conditions(survey, calendar, visit, band_index, rng)
    point_flux = source.flux(mjd, band_index, survey.bands)
    host = source.host
    host_flux = host.flux()[band_index] if host is not None else np.zeros(len(mjd))
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
    return StampSeries(
        frames=frames,
        mjd=mjd,
        band=np.array([get_band(b).id for b in survey.bands])[band_index],
        psf_fwhm=conditions.psf_fwhm,
        sky_sigma=conditions.sky_sigma,
        zeropoint=conditions.zeropoint,
        object_id=spec.object_id,
        ra=spec.ra,
        dec=spec.dec,
        redshift=z,
        label=spec.label,
        survey=settings.survey,
        pixel_scale=survey.pixel_scale,
        subtype=source.subtype,
        true_flux=point_flux,
    )


def _peak_mag(source, peak_mjd: float, survey: SurveyDefinition) -> float:
    """Brightest magnitude of the source in g, r or i within -20..+60 days of the peak."""
    times = peak_mjd + np.arange(-20.0, 60.0, 1.0)
    gri = [survey.band_index(b) for b in survey.bands[1:4]]
    band_index = np.repeat(gri, len(times))
    flux = source.flux(np.tile(times, len(gri)), band_index, survey.bands)
    return 22.5 - 2.5 * np.log10(max(float(flux.max()), 1e-12))


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
    from convention import __version__

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
