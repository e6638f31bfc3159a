"""Realism figures of the SDSS-II twin: example objects of each class, and the simulated
distributions against the catalog's and the survey's figures.

    python benchmarks/simulator_realism.py --data twin.h5 \
        --catalog ../shared/data/sdss2-candidates/SDSS2_DS17_HEAD.FITS.gz

Writes benchmarks/results/simulator/{examples_<class>.png, distributions.png, realism.json}
and prints the figures it compares.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import convention
from convention.bands import get_band
from convention.plotting import plot_series
from convention.sim.catalog import read_sdss2_catalog
from convention.sim.survey import SDSS2

RESULTS = Path(__file__).parent / "results" / "simulator"


def peak_magnitudes(store, band: str) -> tuple[np.ndarray, list[str]]:
    """Peak AB magnitude of the injected point source in one band, per object."""
    band_id = get_band(band).id
    mags, labels = [], []
    for series in store:
        flux = series.true_flux[series.band == band_id]
        peak = flux.max() if flux.size else np.nan
        mags.append(22.5 - 2.5 * np.log10(peak) if peak > 0 else np.nan)
        labels.append(series.label)
    return np.array(mags), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the simulated twin (HDF5 store)")
    parser.add_argument("--catalog", required=True, help="the SDSS-II HEAD catalog")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    store = convention.read(args.data)
    specs = {s.object_id: s for s in read_sdss2_catalog(args.catalog)}
    objects = store.object_table()
    frames = store.frame_table()

    rng = np.random.default_rng(0)
    for name in store.class_names:
        ids = [o for o, lab in zip(objects["object_id"], store.labels, strict=True) if lab == name]
        fig = plot_series(store.get(str(rng.choice(ids))), max_epochs=14)
        fig.savefig(RESULTS / f"examples_{name}.png", dpi=80, bbox_inches="tight")
        plt.close(fig)

    peak_r, labels = peak_magnitudes(store, "sdss::r")
    labels = np.array(labels)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    for name in store.class_names:
        sel = labels == name
        ax.hist(peak_r[sel], bins=np.arange(14, 27, 0.25), histtype="step", label=name)
    depth = SDSS2.depth_5sigma[2]
    ax.axvline(depth, color="k", ls="--", label=f"r 5σ depth {depth}")
    ax.set_xlabel("simulated peak r magnitude of the variable source")
    ax.legend(fontsize=8)
    ax.set_title("peak magnitude (the catalog has none)")

    ax = axes[0, 1]
    bins = np.arange(0.5, 3.0, 0.05)
    for band in SDSS2.bands:
        sel = frames["band"] == get_band(band).id
        ax.hist(frames["psf_fwhm"][sel], bins=bins, histtype="step", label=band)
    ax.axvline(1.4, color="k", ls="--", label='median r 1.4" (DR7)')
    ax.axvline(1.8, color="gray", ls=":", label='survey-quality cut 1.8"')
    ax.set_xlabel("PSF FWHM (arcsec)")
    ax.legend(fontsize=8)
    ax.set_title("seeing")

    ax = axes[1, 0]
    catalog_nobs = np.array([specs[o].n_obs for o in objects["object_id"]])
    ax.hist(catalog_nobs, bins=np.arange(0, 250, 5), histtype="step", label="catalog NOBS")
    ax.hist(store.lengths, bins=np.arange(0, 250, 5), histtype="step", label="simulated frames")
    ax.set_xlabel("single-band observations per object")
    ax.legend(fontsize=8)
    ax.set_title("sequence length")

    ax = axes[1, 1]
    catalog_z = np.array([specs[o].redshift for o in objects["object_id"]])
    for name in ("SNIa", "SNOther", "AGN"):
        sel = labels == name
        ax.hist(objects["redshift"][sel], bins=np.arange(0, 1.0, 0.02), histtype="step",
                label=f"{name} simulated")  # fmt: skip
        known = catalog_z[sel][np.isfinite(catalog_z[sel])]
        ax.hist(known, bins=np.arange(0, 1.0, 0.02), histtype="step", ls="--",
                label=f"{name} catalog (known z)")  # fmt: skip
    ax.set_xlabel("redshift")
    ax.legend(fontsize=7)
    ax.set_title("redshift")
    fig.tight_layout()
    fig.savefig(RESULTS / "distributions.png", dpi=90)
    plt.close(fig)

    r_seeing = frames["psf_fwhm"][frames["band"] == get_band("sdss::r").id]
    figures = {
        "command": "python benchmarks/simulator_realism.py --data twin.h5 --catalog "
        + args.catalog,
        "provenance": store.provenance,
        "objects": len(store),
        "frames_median": float(np.median(store.lengths)),
        "catalog_nobs_median": float(np.median(catalog_nobs)),
        "seeing_r_median_arcsec": round(float(np.median(r_seeing)), 3),
        "seeing_r_fraction_above_1.8": round(float(np.mean(r_seeing > 1.8)), 3),
        "peak_r_median_by_class": {
            name: round(float(np.nanmedian(peak_r[labels == name])), 2)
            for name in store.class_names
        },
        "fraction_peak_r_brighter_than_depth_by_class": {
            name: round(float(np.mean(peak_r[labels == name] < depth)), 3)
            for name in store.class_names
        },
    }
    (RESULTS / "realism.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
