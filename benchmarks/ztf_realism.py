"""The ZTF twin against real ZTF alerts: what a broker sees of one alert, side by side.

Each alert, real or simulated, gives: its band; the sky noise of its science and template
cutouts (nanomaggies per pixel) and the template's depth over the science image (2.5 log10
of their noise ratio, magnitudes); the sky noise of its difference cutout (the twin's: its
frame less the PSF-matched template, as its packets carry it); the template's frames
coadded (``nframesref``); the seeing (FWHM, arcsec); the 5-sigma limit (``diffmaglim``;
the twin's from its sky noise and PSF); its magnitude (``magpsf``; the twin's by forced
PSF photometry of the difference); its history (detections and non-detections in
``prv_candidates``, 30 days at most; days since the previous and the first detection);
whether its cutout is clipped at a CCD edge; and the offset of the nearest source in the
template (the centroid of its 5-sigma pixels within 10", measured alike on both); the
catalogue fields (the nearest Pan-STARRS1 source's star/galaxy score, ``sgscore1``,
whether it is a star, its distance, ``distpsnr1``, and the nearest reference-image
source's, ``distnr``, in arcsec); the template's noise correlation between adjacent pixels
(a resampled coadd's). A simulated object's alert is its last frame, its light curve (the
twin's prv_candidates: detections and 5-sigma limits of the 30 days before) its history.

The twin is measured against ``ztf-alerts/unlabelled`` (1,270 alerts, picked by brokers
for their tests, so not the stream's mix of classes and brightness), less the alerts of
known solar-system objects (``ssdistnr`` within 5"; 287 of them): the twin simulates no
moving objects, and their trailed, hostless, historyless alerts would set its seeing,
hosts and histories (every figure over all alerts is in ``realism.json`` too). The same
alerts measure the observing figures the ZTF definition takes (``calibration`` in
``realism.json``): median seeing, edge clipping and 5-sigma limit per band, and how far
ZTF's PSF-fit flux errors exceed white pixel noise over the PSF's effective area, as its
5-sigma limits imply (and, a check, as the ``sigmapsf`` of detections within a magnitude
of their limit do). ``ztf-alerts/labelled``
(292 alerts of known class, for evaluation only) gives a per-class table beside it and
never sets a figure. Each figure has a tolerance, stated in ``TOLERANCES`` with why; the
table says which the twin meets.

    convention simulate --survey ztf --n-objects 1000 --seed 0 --out ztf.h5
    python benchmarks/ztf_realism.py --sim ztf.h5 --alerts ../shared/data/ztf-alerts \\
        --out benchmarks/results/ztf-realism

Writes ``realism.json``, ``realism.md`` and ``realism.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import fastavro
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import binary_erosion, gaussian_filter

from convention.bands import get_band
from convention.data.series import references_of
from convention.io import read
from convention.io.formats.alerts import read_alert_file
from convention.io.packets import limiting_magnitude
from convention.lightcurves import lightcurve_of
from convention.metadata import galactic_latitude
from convention.photometry import background, difference_stamps
from convention.psf import MOFFAT_BETA, moffat_effective_area
from convention.sim.survey import ZTF

PEAK_RADIUS_ARCSEC = 10.0
HISTORY_DAYS = 30.0  # how far back an alert's prv_candidates reach (Patterson et al. 2019)
# A known asteroid this near (ssdistnr, arcsec) makes the alert a moving object's, as
# brokers' solar-system cuts take it (Fink's, for one).
SOLAR_SYSTEM_ARCSEC = 5.0
# Detections within this many magnitudes of their 5-sigma limit measure the PSF-fit error
# (their own light adds little Poisson noise).
FAINT_MAG = 1.0
BANDS = ("ztf::g", "ztf::r")


@dataclass(frozen=True)
class Tolerance:
    """How far the twin's median may sit from the real alerts' and why.

    ``kind``: ``ratio`` (sim / real within [1 / value, value]) or ``difference``
    (|sim - real| <= value, in the figure's unit)."""

    kind: str
    value: float
    why: str

    def met(self, real: float, sim: float) -> bool:
        if not (np.isfinite(real) and np.isfinite(sim)):
            return False
        if self.kind == "ratio":
            return real > 0 and sim > 0 and 1 / self.value <= sim / real <= self.value
        return abs(sim - real) <= self.value


TOLERANCES = {
    "science_noise": Tolerance(
        "ratio", 1.25, "sky and depth vary with moon and airmass; 25% is 0.24 mag of depth"
    ),
    "template_noise": Tolerance(
        "ratio", 1.25, "as the science noise, the template's depth following the frames'"
    ),
    "difference_noise": Tolerance(
        "ratio", 1.25, "as the science noise: the frame's noise and the matched template's"
    ),
    "template_depth": Tolerance(
        "difference", 0.3, "the template's gain over one frame, in mag: 0.3 mag, as depth"
    ),
    "nframesref": Tolerance(
        "difference", 2.0, "drawn from these alerts' deciles: a check of the draw only"
    ),
    "seeing": Tolerance(
        "ratio", 1.15, "the twin's median seeing is these alerts': a check of the draw only"
    ),
    "magpsf": Tolerance(
        "difference", 0.5, "the broker-picked sample is not the stream: half a magnitude"
    ),
    "prv_detections": Tolerance("ratio", 2.0, "history lengths vary by survey phase: 2x"),
    "prv_nondetections": Tolerance("ratio", 2.0, "as detections"),
    "days_since_previous": Tolerance("ratio", 2.0, "cadence of 1-3 nights: 2x"),
    "history_days": Tolerance("ratio", 2.0, "days since the first detection, 30 at most: 2x"),
    "limiting_mag": Tolerance(
        "difference", 0.3, "the twin's depth is these alerts' median limit: a check, 0.3 mag"
    ),
    "edge_clipped": Tolerance(
        "difference", 0.05, "the twin's fraction is these alerts': a check, 5 points"
    ),
    "template_peak_offset": Tolerance(
        "difference", 1.0, "host offsets: SDSS-II's hosts moved to the twin's distances: 1 pixel"
    ),
    "template_without_peak": Tolerance("difference", 0.15, "hostless fraction: 15 points"),
    "star_score": Tolerance(
        "difference", 0.2, "the sample's mix of stars and galaxies is the brokers' pick: 0.2"
    ),
    "star_like": Tolerance("difference", 0.15, "nearest source a star (score > 0.5): 15 points"),
    "star_distance": Tolerance("ratio", 2.0, "hosts' offsets and the field's density: 2x"),
    "reference_distance": Tolerance("ratio", 2.0, "as the Pan-STARRS1 distance"),
    "template_correlation": Tolerance(
        "difference", 0.05, "adjacent pixels' noise correlation, set by the resampling kernel"
    ),
}
FIGURES = tuple(TOLERANCES)
# Fractions (the mean of a 0/1 figure) rather than medians.
FRACTIONS = ("edge_clipped", "template_without_peak", "star_like")
CATALOGUE = ("star_score", "star_distance", "reference_distance")


def catalogue_figures(metadata: dict[str, float]) -> dict[str, float]:
    """The catalogue fields of an alert (NaN where not measured) and whether its nearest
    Pan-STARRS1 source is a star."""
    fields = {name: metadata.get(name, np.nan) for name in CATALOGUE}
    score = fields["star_score"]
    return fields | {"star_like": float(score > 0.5) if np.isfinite(score) else np.nan}


def template_peak_offset(stamp: np.ndarray, noise: float) -> float:
    """Pixels from the centre to the light-weighted centroid of the (smoothed) template's
    pixels that stand 5 sigma above the sky within ``PEAK_RADIUS_ARCSEC``: the nearest
    source's offset (a host's, or the object itself when it was there); NaN when none
    does."""
    image = gaussian_filter(np.nan_to_num(stamp).astype(np.float64), 1.0)
    h, w = image.shape
    y, x = np.mgrid[:h, :w]
    dy, dx = y - (h - 1) / 2, x - (w - 1) / 2
    # A 1-pixel Gaussian sums ~12.6 pixels: the smoothed sky's noise is noise / 3.5.
    bright = (np.hypot(dy, dx) <= PEAK_RADIUS_ARCSEC / ZTF.pixel_scale) & (image > 5 * noise / 3.5)
    if not (np.isfinite(noise) and noise > 0 and bright.any()):
        return np.nan
    weight = image[bright]
    return float(
        np.hypot(np.average(dy[bright], weights=weight), np.average(dx[bright], weights=weight))
    )


def pixel_correlation(stamp: np.ndarray, noise: float) -> float:
    """The mean noise correlation of horizontally and vertically adjacent sky pixels: those
    within 3 sigma of the sky, two pixels away from any that is not (NaN where the stamp
    has too few)."""
    image = np.asarray(stamp, dtype=np.float64) / noise
    sky = binary_erosion(np.abs(np.nan_to_num(image, nan=np.inf)) < 3, iterations=2)
    if sky.sum() < 100 or not noise > 0:
        return np.nan
    variance = np.mean(image[sky] ** 2)
    lags = []
    for a, b, both in (
        (image[:, :-1], image[:, 1:], sky[:, :-1] & sky[:, 1:]),
        (image[:-1], image[1:], sky[:-1] & sky[1:]),
    ):
        lags.append(np.mean(a[both] * b[both]) / variance)
    return float(np.mean(lags))


def error_excess(flux_error: float, noise: float, fwhm: float) -> float:
    """A PSF-fit flux error (nanomaggies) over white pixel noise (``noise``, nanomaggies
    per pixel) in the effective area of a Moffat PSF of FWHM ``fwhm`` (arcsec)."""
    area = moffat_effective_area(fwhm, MOFFAT_BETA) / ZTF.pixel_scale**2
    return float(flux_error / (noise * np.sqrt(area)))


def real_alerts(folder: Path, labels: dict[str, str]) -> list[dict]:
    """One row of figures per real alert file of ``folder``."""
    rows = []
    for path in sorted(folder.glob("*.avro")):
        with path.open("rb") as handle:
            record = next(fastavro.reader(handle))
        alert = read_alert_file(path, cutouts=("science", "difference")).alerts[0]
        candidate = record["candidate"]
        history = record.get("prv_candidates") or []
        detected = [row["jd"] for row in history if row.get("magpsf") is not None]
        science, reference = alert.images["science"], alert.reference
        template_noise = reference.sky_sigma if reference is not None else np.nan
        offset = template_peak_offset(reference.stamp, template_noise) if reference else np.nan
        earlier = [jd for jd in detected if jd < candidate["jd"]]
        limit = candidate.get("diffmaglim") or np.nan
        difference_noise = background(alert.images["difference"])[1]
        faint = candidate["magpsf"] > limit - FAINT_MAG
        fit_error = alert.lightcurve[0][3]  # the detection's own row: its flux error
        seeing = alert.meta["psf_fwhm"]
        asteroid = candidate.get("ssdistnr")
        rows.append(
            {
                "object_id": alert.object_id,
                "class": labels.get(alert.object_id, ""),
                "band": alert.band_name,
                "science_noise": alert.meta["sky_sigma"],
                "template_noise": template_noise,
                "difference_noise": difference_noise,
                "template_depth": 2.5 * np.log10(alert.meta["sky_sigma"] / template_noise)
                if reference is not None
                else np.nan,
                "nframesref": candidate.get("nframesref") or np.nan,
                "seeing": seeing,
                "magpsf": candidate["magpsf"],
                "prv_detections": len(detected),
                "prv_nondetections": len(history) - len(detected),
                "days_since_previous": candidate["jd"] - max(earlier) if earlier else np.nan,
                "history_days": candidate["jd"] - min([*earlier, candidate["jd"]]),
                "limiting_mag": limit,
                "edge_clipped": float(np.isnan(science).any()),
                "template_peak_offset": offset,
                **catalogue_figures(alert.meta),
                "template_correlation": pixel_correlation(reference.stamp, template_noise)
                if reference is not None
                else np.nan,
                "galactic_latitude": galactic_latitude(alert.meta["ra"], alert.meta["dec"]),
                # ZTF's errors over white noise, from its 5-sigma limit and from a faint
                # detection's own error.
                "limit_excess": error_excess(
                    10 ** (-0.4 * (limit - 22.5)) / 5, alert.meta["sky_sigma"], seeing
                ),
                "fit_excess": error_excess(fit_error, difference_noise, seeing)
                if faint
                else np.nan,
                "solar_system": asteroid is not None and 0 <= asteroid <= SOLAR_SYSTEM_ARCSEC,
            }
        )
    for row in rows:
        row["template_without_peak"] = float(not np.isfinite(row["template_peak_offset"]))
    return rows


def simulated_alerts(path: Path) -> list[dict]:
    """One row of figures per simulated object: its last frame as the alert."""
    rows = []
    for series in read(path):
        last = len(series) - 1
        band = int(series.band[last])
        references = references_of(series)
        reference = references[band]
        lc = lightcurve_of(series, references=references)
        flux = abs(float(lc["flux"][last]))
        mjd = series.mjd
        noise = float(series.sky_sigma[last])
        offset = template_peak_offset(reference.stamp, reference.sky_sigma)
        difference = difference_stamps(series[last], references)[0]
        # A packet's prv_candidates reach back HISTORY_DAYS: the twin's light curve (the
        # union of the object's packets) over that window.
        previous = np.flatnonzero(mjd[:last] >= mjd[last] - HISTORY_DAYS)
        times = np.asarray(series.lightcurve["mjd"])
        # The alert's own detection: its error sets the packet's 5-sigma limit.
        (own,) = np.flatnonzero((times == mjd[last]) & np.asarray(series.lightcurve["detected"]))
        limit = limiting_magnitude(float(series.lightcurve["flux_err"][own]))
        history = series.lightcurve[(times < mjd[last]) & (times >= mjd[last] - HISTORY_DAYS)]
        rows.append(
            {
                "object_id": series.object_id,
                "class": series.label or "",
                "band": get_band(band).name,
                "science_noise": noise,
                "template_noise": reference.sky_sigma,
                "difference_noise": background(difference)[1],
                "template_depth": 2.5 * np.log10(noise / reference.sky_sigma),
                "nframesref": float(reference.n_frames),
                "seeing": float(series.psf_fwhm[last]),
                "magpsf": 22.5 - 2.5 * np.log10(flux) if flux > 0 else np.nan,
                "prv_detections": int(history["detected"].sum()),
                "prv_nondetections": int((~history["detected"]).sum()),
                "days_since_previous": float(mjd[last] - mjd[last - 1]) if last else np.nan,
                "history_days": float(mjd[last] - mjd[previous[0]]) if len(previous) else 0.0,
                "limiting_mag": limit,
                "edge_clipped": float(np.isnan(series.frames[last]).any()),
                "template_peak_offset": offset,
                "template_without_peak": float(not np.isfinite(offset)),
                **catalogue_figures(series.metadata),
                "template_correlation": pixel_correlation(reference.stamp, reference.sky_sigma),
                "galactic_latitude": galactic_latitude(series.ra, series.dec),
            }
        )
    return rows


def summary(rows: list[dict], figure: str) -> float:
    """The figure's median over rows (its mean for a 0/1 figure), NaN where none has it."""
    values = np.array([row[figure] for row in rows], dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan")
    return float(values.mean() if figure in FRACTIONS else np.median(values))


def calibration(real: list[dict]) -> dict[str, dict[str, float]]:
    """Per band, the observing figures the ZTF definition takes from real alerts: median
    seeing (arcsec), fraction of cutouts clipped at an edge, median 5-sigma limit (mag),
    the median excess of ZTF's PSF-fit errors over white noise implied by each alert's
    limit, science noise and seeing, the same from faint detections' own errors (a
    check), and the alerts each rests on."""
    out = {}
    for band in BANDS:
        rows = [row for row in real if row["band"] == band]
        fit = np.array([row["fit_excess"] for row in rows])
        out[band] = {
            "seeing": summary(rows, "seeing"),
            "edge_clipped": summary(rows, "edge_clipped"),
            "limiting_mag": summary(rows, "limiting_mag"),
            "limit_excess": float(np.nanmedian([row["limit_excess"] for row in rows])),
            "fit_excess": float(np.nanmedian(fit)),
            "n_alerts": len(rows),
            "n_faint": int(np.isfinite(fit).sum()),
        }
    return out


def compare(real: list[dict], sim: list[dict]) -> list[dict]:
    """Per band and figure: the real and simulated summaries and whether they agree."""
    table = []
    for band in BANDS:
        real_band = [row for row in real if row["band"] == band]
        sim_band = [row for row in sim if row["band"] == band]
        for figure in FIGURES:
            a, b = summary(real_band, figure), summary(sim_band, figure)
            table.append(
                {
                    "band": band,
                    "figure": figure,
                    "real": a,
                    "sim": b,
                    "tolerance": f"{TOLERANCES[figure].kind} {TOLERANCES[figure].value:g}",
                    "meets": TOLERANCES[figure].met(a, b),
                    "n_real": len(real_band),
                    "n_sim": len(sim_band),
                }
            )
    return table


def per_class(real: list[dict], sim: list[dict]) -> list[dict]:
    """Medians of magnitude, detections, days since the previous one, the nearest
    Pan-STARRS1 source's score and distance, and |b|, per class."""
    out = []
    for name in sorted({row["class"] for row in real if row["class"]}):
        for source, rows in (("real (labelled)", real), ("sim", sim)):
            chosen = [row for row in rows if row["class"] == name]
            out.append(
                {
                    "class": name,
                    "source": source,
                    "n": len(chosen),
                    **{
                        f: summary(chosen, f)
                        for f in (
                            "magpsf",
                            "prv_detections",
                            "days_since_previous",
                            "star_score",
                            "star_distance",
                            "galactic_latitude",
                        )
                    },
                }
            )
    return out


def plot(real: list[dict], sim: list[dict], path: Path) -> None:
    """A histogram per figure, real against simulated (all bands)."""
    shown = [f for f in FIGURES if f not in FRACTIONS]
    columns = 4
    fig, axes = plt.subplots(-(-len(shown) // columns), columns, figsize=(16, 9))
    for ax, figure in zip(axes.flat, shown, strict=False):
        values = [np.array([row[figure] for row in rows], dtype=float) for rows in (real, sim)]
        logarithmic = figure.endswith("_noise")  # noise spans decades: log10
        values = [np.log10(v[v > 0]) if logarithmic else v for v in values]
        values = [v[np.isfinite(v)] for v in values]
        joined = np.concatenate(values)
        if not len(joined):
            continue
        low, high = np.percentile(joined, [1, 99])
        bins = np.linspace(low, high if high > low else low + 1, 30)
        for v, label in zip(values, ("real", "sim"), strict=True):
            ax.hist(np.clip(v, low, high), bins=bins, histtype="step", density=True, label=label)
        ax.set_title(f"log10 {figure}" if logarithmic else figure, fontsize=9)
    for ax in axes.flat[len(shown) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def markdown(table: list[dict], classes: list[dict]) -> str:
    """The comparison and per-class tables as Markdown."""
    lines = [
        "| band | figure | real | sim | tolerance | meets | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table:
        why = TOLERANCES[row["figure"]].why
        lines.append(
            f"| {row['band']} | {row['figure']} | {row['real']:.3g} | {row['sim']:.3g} | "
            f"{row['tolerance']} | {'yes' if row['meets'] else '**no**'} | {why} |"
        )
    lines += [
        "",
        "| class | source | n | magpsf | prv detections | days since previous | star score "
        "| star distance (arcsec) | abs(b) (deg) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in classes:
        lines.append(
            f"| {row['class']} | {row['source']} | {row['n']} | {row['magpsf']:.2f} | "
            f"{row['prv_detections']:.1f} | {row['days_since_previous']:.2f} | "
            f"{row['star_score']:.2f} | {row['star_distance']:.2f} | "
            f"{row['galactic_latitude']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, required=True, help="a simulated ZTF store")
    parser.add_argument("--alerts", type=Path, default=Path("../shared/data/ztf-alerts"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ztf-realism"))
    args = parser.parse_args()
    with (args.alerts / "labelled" / "labels.csv").open() as handle:
        labels = {row["objectId"]: row["class4"] for row in csv.DictReader(handle)}
    unlabelled = real_alerts(args.alerts / "unlabelled", {})
    labelled = real_alerts(args.alerts / "labelled", labels)
    sim = simulated_alerts(args.sim)
    # The twin is measured against the unlabelled alerts of objects it simulates; the
    # labelled ones, for evaluation only, give the per-class check and never set a figure.
    stationary = [row for row in unlabelled if not row["solar_system"]]
    table = compare(stationary, sim)
    classes = per_class(labelled, sim)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(stationary, sim, args.out / "realism.png")
    text = (
        f"Real: {len(stationary)} unlabelled alerts ({len(unlabelled) - len(stationary)} of "
        f"known solar-system objects left out); sim: {len(sim)} objects.\n\n"
        + markdown(table, classes)
    )
    (args.out / "realism.md").write_text(text)
    result = {
        "command": f"python benchmarks/ztf_realism.py --sim {args.sim} --alerts {args.alerts}",
        "n_real": {
            "unlabelled": len(unlabelled),
            "solar_system": len(unlabelled) - len(stationary),
            "labelled": len(labelled),
        },
        "n_sim": len(sim),
        "comparison": table,
        "comparison_with_solar_system": compare(unlabelled, sim),
        "calibration": calibration(stationary),
        "per_class": classes,
        "meets": sum(row["meets"] for row in table),
        "figures": len(table),
    }
    (args.out / "realism.json").write_text(json.dumps(result, indent=1) + "\n")
    print(text)
    print(f"meets {result['meets']} of {result['figures']} figures")


if __name__ == "__main__":
    main()
