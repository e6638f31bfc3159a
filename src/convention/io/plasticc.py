"""PLAsTiCC light curves: reading them, and rendering them into LSST-like stamps.

The light curves (``object_id, mjd, passband, flux, flux_err, detected_bool``; passband
0-5 = LSST ugrizy; flux in FLUXCAL units, AB zero point 27.5) and metadata (``target``,
``true_z``, ``tflux_[ugrizy]``, ``hostgal_photoz``, ``mwebv``, ...) are the PLAsTiCC
release's CSV files; the host's photometric redshift and the Milky Way E(B-V) become the
object's catalogue metadata (``convention.metadata``; never ``true_z`` or the host's
spectroscopic redshift, which a survey's test objects mostly lack). Targets map to
the four classes as in ``convention.classes.PLASTICC_TARGET``; the excluded targets are
skipped (or kept unlabelled).

Rendering draws every observation as a stamp at 0.2"/pixel through a Moffat PSF of LSST
seeing: the event's flux as a point source (a Galactic star's template flux added), an
extragalactic host from ``tflux_*`` as a Sersic galaxy whose angular size follows
``true_z``, and Gaussian pixel noise whose level gives the observation's ``flux_err`` for
PSF-fitted photometry. The noise is drawn orthogonal to the PSF, so forced PSF photometry
on a stamp returns the catalogue flux of that observation (the catalogue flux already
carries its own noise realisation; adding a second one would double it).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.cosmology import Planck18
from threadpoolctl import threadpool_limits

from convention.bands import survey_bands
from convention.classes import FOUR_CLASS, PLASTICC_TARGET
from convention.data.lightcurve import LabelledLightCurve, make_lightcurve
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.io.ingest import Collection, Rejected
from convention.io.tables import group_rows, read_table
from convention.metadata import checked
from convention.psf import MOFFAT_BETA, moffat_effective_area, moffat_sampled
from convention.sim.render import FrameConditions, render_frames
from convention.sim.sources.host import SERSIC_GRID, SERSIC_WEIGHTS, HostGalaxy

LIGHTCURVE_COLUMNS = ("object_id", "mjd", "passband", "flux", "flux_err")
METADATA_COLUMNS = ("object_id", "target")
FLUXCAL_TO_NMGY = 10 ** (-0.4 * (27.5 - 22.5))
LSST_BANDS = [b.name for b in survey_bands("lsst")]

# LSST observing figures for rendering. Median delivered seeing in r ~0.83" (Ivezic et al.
# 2019, ApJ 873, 111: the survey's median FWHM); lognormal scatter assumed; Kolmogorov
# scaling with wavelength as for SDSS; the package's Moffat beta, as for SDSS.
PIXEL_SCALE = 0.2
SEEING_MEDIAN_R = 0.83
SEEING_SIGMA_LN = 0.2
REGISTRATION_JITTER_PIX = 0.1  # assumed
HOST_RE_KPC = 3.0  # median half-light radius of hosts (assumed; Shen et al. 2003 scale)
MAX_HOST_RE_ARCSEC = 8.0


def read_plasticc(
    lightcurves: str | Path, metadata: str | Path, keep_unlabelled: bool = False
) -> tuple[list[LabelledLightCurve], int]:
    """PLAsTiCC objects with their light curves in nanomaggies.

    Returns:
        The objects in metadata order, and the number skipped for an excluded target.

    Raises:
        ConventionError: unreadable files, missing columns, a passband outside 0-5.
    """
    lc_path, meta_path = Path(lightcurves), Path(metadata)
    for path in (lc_path, meta_path):
        if not path.is_file():
            raise ConventionError("no such file", path=path)
    lc = read_table(lc_path, LIGHTCURVE_COLUMNS)
    meta = read_table(meta_path, METADATA_COLUMNS)
    passband = np.asarray(lc["passband"], dtype=np.int64)
    if len(passband) and (passband.min() < 0 or passband.max() > 5):
        bad = int(np.flatnonzero((passband < 0) | (passband > 5))[0])
        raise ConventionError(f"row {bad + 1}: passband {passband[bad]} is not 0-5", path=lc_path)
    rows_of = group_rows(np.asarray(lc["object_id"]).astype(str))
    mjd, flux, err = (np.asarray(lc[c], dtype=np.float64) for c in ("mjd", "flux", "flux_err"))
    detected = (
        np.asarray(lc["detected_bool"], dtype=bool)
        if "detected_bool" in lc.colnames
        else np.ones(len(lc), bool)
    )
    band_names = np.asarray(LSST_BANDS)
    objects, skipped = [], 0
    for row in meta:
        oid = str(row["object_id"])
        target = int(row["target"])
        label = PLASTICC_TARGET.get(target)
        if label is None and not keep_unlabelled:
            skipped += 1
            continue
        rows = rows_of.get(oid, np.array([], dtype=np.int64))
        table = make_lightcurve(
            mjd[rows],
            band_names[passband[rows]],
            flux[rows] * FLUXCAL_TO_NMGY,
            err[rows] * FLUXCAL_TO_NMGY,
            detected[rows],
        )
        extra = {c: row[c] for c in meta.colnames if c != "object_id"}
        objects.append(
            LabelledLightCurve(
                object_id=oid,
                lightcurve=table,
                label=label,
                redshift=float(row["true_z"]) if "true_z" in meta.colnames else np.nan,
                ra=float(row["ra"]) if "ra" in meta.colnames else np.nan,
                dec=float(row["decl"]) if "decl" in meta.colnames else np.nan,
                meta=extra,
            )
        )
    return objects, skipped


@dataclass(frozen=True)
class RenderSettings:
    """How light curves become stamps; the seed fixes every random draw."""

    stamp_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if not 8 <= self.stamp_size <= 256:
            raise ConventionError(f"stamp size must be 8..256 pixels, got {self.stamp_size}")
        if self.seed < 0:
            raise ConventionError(f"the seed must be 0 or more, got {self.seed}")

    def command(self, lightcurves: Path, metadata: Path, keep_unlabelled: bool) -> str:
        """The command line that renders these stamps (the worker count does not matter)."""
        return (
            f"convention render-lightcurves --format plasticc --lightcurves {lightcurves} "
            f"--metadata {metadata} --stamp-size {self.stamp_size} --seed {self.seed}"
            + (" --keep-unlabelled" if keep_unlabelled else "")
        )


def psf_orthogonal_noise(psf: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian pixel noise of standard deviation ``sigma`` with its projection on ``psf``
    removed: a PSF fit of the noisy stamp gives the noiseless stamp's flux exactly."""
    noise = rng.normal(0.0, sigma, psf.shape)
    return noise - psf * (np.sum(psf * noise) / np.sum(psf * psf))


def _host(obj: LabelledLightCurve, rng: np.random.Generator) -> HostGalaxy | None:
    tflux = np.array([float(obj.meta.get(f"tflux_{b[-1]}", 0.0)) for b in LSST_BANDS])
    if not np.isfinite(obj.redshift) or obj.redshift <= 0 or not np.any(tflux > 0):
        return None
    with np.errstate(divide="ignore"):
        mags = np.where(tflux > 0, 27.5 - 2.5 * np.log10(np.maximum(tflux, 1e-30)), np.inf)
    scale = Planck18.arcsec_per_kpc_proper(obj.redshift).to_value(u.arcsec / u.kpc)
    r_e_kpc = HOST_RE_KPC * 10 ** (0.15 * rng.standard_normal())
    compact = obj.label == "AGN"
    r_e = float(np.clip(r_e_kpc * scale * (0.5 if compact else 1.0), 0.2, MAX_HOST_RE_ARCSEC))
    # An exponential disk's light, hence its events, lies at r ~ Gamma(2, r_e / 1.678).
    separation = 0.0 if compact else float(rng.gamma(2.0, r_e / 1.678))
    angle = rng.uniform(0, 2 * np.pi)
    return HostGalaxy(
        mags=tuple(float(m) for m in mags),
        half_light_radius=r_e,
        sersic_n=float(rng.choice(SERSIC_GRID, p=SERSIC_WEIGHTS)),
        axis_ratio=float(rng.uniform(0.3, 1.0)),
        position_angle=float(rng.uniform(0, np.pi)),
        offset=(-separation * np.cos(angle), -separation * np.sin(angle)),
    )


def render_lightcurve(obj: LabelledLightCurve, index: int, settings: RenderSettings) -> StampSeries:
    """One object's observations drawn as LSST-like stamps in nanomaggies.

    Args:
        obj: the object (light curve in nanomaggies, PLAsTiCC metadata in ``meta``).
        index: its position in the data set; with the seed it fixes the random draws.
        settings: stamp size and seed.

    Raises:
        ConventionError: an empty light curve, duplicate observations, non-finite values.
    """
    lc = obj.lightcurve
    if len(lc) == 0:
        raise ConventionError("no observations", obj=obj.object_id)
    keys = list(zip(lc["mjd"], lc["band"], strict=True))
    if len(set(keys)) != len(keys):
        raise ConventionError("two observations at the same mjd and band", obj=obj.object_id)
    flux = np.asarray(lc["flux"], dtype=np.float64)
    err = np.asarray(lc["flux_err"], dtype=np.float64)
    if not (np.all(np.isfinite(flux)) and np.all(np.isfinite(err)) and np.all(err > 0)):
        raise ConventionError("non-finite flux or non-positive flux_err", obj=obj.object_id)
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(index,)))
    bands = [LSST_BANDS.index(b) for b in lc["band"]]
    wavelengths = np.array([b.wavelength_eff for b in survey_bands("lsst")])
    ratio = wavelengths[bands] / wavelengths[2]
    fwhm = SEEING_MEDIAN_R * ratio**-0.2 * np.exp(SEEING_SIGMA_LN * rng.standard_normal(len(lc)))
    offset = REGISTRATION_JITTER_PIX * rng.standard_normal((len(lc), 2))
    host = _host(obj, rng)
    galactic = not np.isfinite(obj.redshift) or obj.redshift <= 0
    point = flux.copy()
    if galactic:
        tflux = np.array([float(obj.meta.get(f"tflux_{b[-1]}", 0.0)) for b in LSST_BANDS])
        point += tflux[bands] * FLUXCAL_TO_NMGY
    conditions = FrameConditions(
        psf_fwhm=fwhm,
        electrons_per_nmgy=np.ones(len(lc)),
        sky_electrons=np.zeros(len(lc)),
        read_noise=0.0,
        offset=offset,
    )
    host_flux = host.flux()[bands] if host is not None else np.zeros(len(lc))
    size = settings.stamp_size
    frames = render_frames(
        host.profile() if host is not None else None,
        host_flux,
        point,
        conditions,
        size,
        PIXEL_SCALE,
        MOFFAT_BETA,
        seed=None,
    )
    sky_sigma = np.empty(len(lc), dtype=np.float32)
    for k in range(len(lc)):
        area = moffat_effective_area(float(fwhm[k]), MOFFAT_BETA) / PIXEL_SCALE**2
        sigma = err[k] / np.sqrt(area)
        psf = moffat_sampled((size, size), float(fwhm[k]) / PIXEL_SCALE, offset[k])
        frames[k] += psf_orthogonal_noise(psf, sigma, rng).astype(np.float32)
        sky_sigma[k] = sigma
    return StampSeries(
        frames=frames,
        mjd=lc["mjd"],
        band=[b for b in lc["band"]],
        psf_fwhm=fwhm,
        sky_sigma=sky_sigma,
        zeropoint=np.full(len(lc), np.nan),
        object_id=obj.object_id,
        ra=obj.ra,
        dec=obj.dec,
        redshift=obj.redshift,
        label=obj.label,
        survey="lsst",
        pixel_scale=PIXEL_SCALE,
        subtype=str(obj.meta.get("target", "")) or None,
        true_flux=point,
        lightcurve=lc,
        metadata=plasticc_metadata(obj.meta),
    )


# PLAsTiCC's metadata columns -> the ``convention.metadata`` field each gives.
METADATA_FIELDS = {
    "hostgal_photoz": "host_redshift",
    "hostgal_photoz_err": "host_redshift_error",
    "mwebv": "mw_ebv",
}


def plasticc_metadata(meta: dict) -> dict[str, float]:
    """An object's catalogue fields from its PLAsTiCC metadata row: the host's photometric
    redshift and its error (0 for a Galactic object, as PLAsTiCC gives them) and the Milky
    Way E(B-V). A column that is absent, not a number or outside its field's range is not
    measured (left out)."""
    fields = {}
    for column, name in METADATA_FIELDS.items():
        try:
            value = checked(name, float(meta[column]))
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(value):
            fields[name] = value
    return fields


_WORKER: dict = {}


def _init_worker(settings: RenderSettings, processes: int) -> None:
    if processes > 1:
        threadpool_limits(1)
    _WORKER["settings"] = settings


def _render_indexed(item: tuple[int, LabelledLightCurve]) -> StampSeries | Rejected:
    index, obj = item
    try:
        return render_lightcurve(obj, index, _WORKER["settings"])
    except ConventionError as err:
        return Rejected(err)


def render_items(
    objects: list[LabelledLightCurve], settings: RenderSettings, workers: int = 1
) -> Iterator[StampSeries | Rejected]:
    """Render objects in order with ``workers`` processes (the result does not depend on
    the number of workers)."""
    items = list(enumerate(objects))
    if workers <= 1:
        _init_worker(settings, 1)
        yield from map(_render_indexed, items)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers, _init_worker, (settings, workers)) as pool:
        yield from pool.imap(_render_indexed, items, chunksize=8)


def scan_plasticc(
    lightcurves: Path,
    metadata: Path,
    settings: RenderSettings,
    workers: int = 1,
    keep_unlabelled: bool = False,
) -> tuple[Collection, int]:
    """The rendered PLAsTiCC objects as a Collection, and the number of excluded objects.

    Raises:
        ConventionError: unreadable inputs, or fewer than one worker.
    """
    if workers < 1:
        raise ConventionError(f"workers must be at least 1, got {workers}")
    objects, skipped = read_plasticc(lightcurves, metadata, keep_unlabelled)
    collection = Collection(
        survey="lsst",
        bands=LSST_BANDS,
        class_names=FOUR_CLASS.classes,
        pixel_scale=PIXEL_SCALE,
        items=render_items(objects, settings, workers),
        n_files=2,
        stamp_shape=(settings.stamp_size, settings.stamp_size),
        provenance={
            "format": "plasticc",
            "lightcurves": str(lightcurves),
            "metadata": str(metadata),
            "render": {
                "stamp_size": settings.stamp_size,
                "seed": settings.seed,
                "pixel_scale": PIXEL_SCALE,
                "seeing_median_r": SEEING_MEDIAN_R,
                "moffat_beta": MOFFAT_BETA,
            },
            "excluded_targets_skipped": skipped,
        },
    )
    return collection, skipped
