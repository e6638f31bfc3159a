"""Objects to simulate: from the SDSS-II candidate catalog, or drawn from distributions fitted
to it (built into the package, so the catalog itself is not needed).

A catalog entry gives the class, and where known the redshift, host magnitudes, host
separation, Milky Way E(B-V), peak MJD and number of observations; what is unknown is drawn
from the class's fitted distribution when the object is simulated.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from pathlib import Path

import numpy as np
from astropy.table import Row, Table

from convention.classes import FOUR_CLASS, SDSS2_SNTYPE, SDSS2_UNLABELLED
from convention.errors import ConventionError

LETTERS = ("u", "g", "r", "i", "z")
REQUIRED_COLUMNS = (
    "SNID",
    "RA",
    "DECL",
    "SNTYPE",
    "NOBS",
    "PEAKMJD",
    "MWEBV",
    "REDSHIFT_FINAL",
    "HOSTGAL_SNSEP",
    *(f"HOSTGAL_MAG_{b}" for b in LETTERS),
)
# The redshift of the source a candidate matched as host and its error, in the order taken
# where the catalog has the columns (``_matched_redshift``).
MATCHED_COLUMNS = (
    ("REDSHIFT_FINAL", "REDSHIFT_FINAL_ERR"),
    ("HOSTGAL_PHOTOZ", "HOSTGAL_PHOTOZ_ERR"),
)
# The paper's class counts (Bairouk et al. 2023, Table 1) for catalog-free simulation.
PAPER_CLASS_COUNTS = {"AGN": 906, "SNIa": 1988, "Variable": 3225, "SNOther": 2130}
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 41)
UNLABELLED_STREAM = 11  # the random stream of an unlabelled candidate's drawn class
DISTRIBUTIONS_FILE = "sdss2_distributions.json"
# Stripe 82: RA -50..+59 deg, Dec -1.25..+1.25 deg.
STRIPE82_RA = (-50.0, 59.0)
STRIPE82_DEC = (-1.25, 1.25)


@dataclass(frozen=True)
class ObjectSpec:
    """What is known about one object before simulation (NaN = unknown, drawn later).

    Attributes:
        object_id: identifier.
        label: 4-class label.
        ra, dec: degrees.
        redshift: NaN when unknown.
        peak_mjd: MJD of the event's peak (the light curve's centre for AGN and stars).
        n_obs: number of single-band observations.
        mw_ebv: Milky Way E(B-V), mag.
        host_mags: AB magnitudes u, g, r, i, z of the host (of the star, for variables).
        host_sep: separation of the object from its host centre, arcsec.
        matched_redshift, matched_redshift_error: the catalog's redshift of the source it
            matched as host, and its error: its final redshift where it has one, else the
            photometric one (SDSS-II gives 62.5% of its variables one, 29% a final one of
            1e-4 or better); NaN when none.
        labelled: False for an object simulated as ``label`` but stored without a label
            (the SDSS-II candidates of unknown type, for pre-training).
    """

    object_id: str
    label: str
    ra: float
    dec: float
    redshift: float
    peak_mjd: float
    n_obs: int
    mw_ebv: float
    host_mags: tuple[float, ...]
    host_sep: float
    matched_redshift: float = float("nan")
    matched_redshift_error: float = float("nan")
    labelled: bool = True


def _valid_mags(row_mags: np.ndarray) -> np.ndarray:
    mags = np.asarray(row_mags, dtype=float)
    return np.where((mags > 10.0) & (mags < 30.0), mags, np.nan)


def _matched_redshift(row: Row, columns: Sequence[str]) -> tuple[float, float]:
    """The catalog's redshift of the source a candidate matched as host and its error:
    ``REDSHIFT_FINAL`` where it has one and its error, else ``HOSTGAL_PHOTOZ``; NaN for
    SNANA's -9 (none) or a catalog without the columns."""
    for value, error in MATCHED_COLUMNS:
        if value in columns and error in columns:
            z, sigma = float(row[value]), float(row[error])
            if z > 0 and sigma >= 0:
                return z, sigma
    return float("nan"), float("nan")


def read_sdss2_catalog(path: str | Path, unlabelled: bool = False) -> list[ObjectSpec]:
    """One ObjectSpec per labelled SDSS-II candidate; SNTYPE 0 (unknown) is left out.

    With ``unlabelled``, instead one per SNTYPE 0 candidate, unlabelled (``labelled``
    False), simulated as a class drawn from the paper's class fractions
    (``PAPER_CLASS_COUNTS``) seeded by its SNID: what they really are is unknown.

    Raises:
        ConventionError: unreadable file or missing columns.
    Warns:
        UserWarning: with the count of SNTYPE codes that map to no class (skipped).
    """
    path = Path(path)
    if path.is_dir():
        raise ConventionError("is a folder, not a catalog file", path=path)
    if not path.is_file():
        raise ConventionError("catalog not found", path=path)
    try:
        table = Table.read(path)
    except Exception as err:  # astropy raises many types for unreadable files
        raise ConventionError(
            f"cannot read catalog: {type(err).__name__}: {err}", path=path
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.colnames]
    if missing:
        raise ConventionError(f"catalog lacks columns {', '.join(missing)}", path=path)
    specs, unknown = [], 0
    classes = list(PAPER_CLASS_COUNTS)
    fractions = np.array(list(PAPER_CLASS_COUNTS.values())) / sum(PAPER_CLASS_COUNTS.values())
    for row in table:
        code = int(row["SNTYPE"])
        if (code == SDSS2_UNLABELLED) != unlabelled:
            continue
        if unlabelled:
            drawn = np.random.default_rng([int(row["SNID"]), UNLABELLED_STREAM])
            label = classes[int(drawn.choice(len(classes), p=fractions))]
        else:
            label = SDSS2_SNTYPE.get(code)
        if label is None:
            unknown += 1
            continue
        z = float(row["REDSHIFT_FINAL"])
        sep = float(row["HOSTGAL_SNSEP"])
        # As the redshift: an unlabelled candidate's match belongs to what it really is.
        matched = (np.nan, np.nan) if unlabelled else _matched_redshift(row, table.colnames)
        specs.append(
            ObjectSpec(
                object_id=str(row["SNID"]),
                label=label,
                ra=float(row["RA"]),
                dec=float(row["DECL"]),
                # An unlabelled candidate's redshift belongs to whatever it really is, not
                # to the class it is simulated as: drawn from that class's instead.
                redshift=z if z > 0 and not unlabelled else np.nan,
                peak_mjd=float(row["PEAKMJD"]),
                n_obs=int(row["NOBS"]),
                mw_ebv=float(row["MWEBV"]),
                host_mags=tuple(_valid_mags([row[f"HOSTGAL_MAG_{b}"] for b in LETTERS])),
                host_sep=sep if sep >= 0 else np.nan,
                matched_redshift=matched[0],
                matched_redshift_error=matched[1],
                labelled=not unlabelled,
            )
        )
    if unknown:
        warnings.warn(
            f"{path}: skipped {unknown} objects with SNTYPE codes of no class", stacklevel=2
        )
    if not specs:
        which = "unlabelled (SNTYPE 0)" if unlabelled else "labelled"
        raise ConventionError(f"catalog holds no {which} objects", path=path)
    return specs


def fit_distributions(specs: list[ObjectSpec]) -> dict:
    """Per-class quantile tables of every ObjectSpec quantity, the host fraction and the
    fraction with a matched redshift.

    The tables (41 quantiles) are what catalog-free simulation draws from.
    """
    fitted: dict = {"quantile_levels": QUANTILE_LEVELS.tolist(), "classes": {}}
    for label in FOUR_CLASS.classes:
        rows = [s for s in specs if s.label == label]
        mags = np.array([s.host_mags for s in rows])
        has_host = np.all(np.isfinite(mags), axis=1)
        matched = np.array([(s.matched_redshift, s.matched_redshift_error) for s in rows])
        matched = matched.reshape(-1, 2)
        has_match = np.isfinite(matched[:, 0])
        columns = {
            "redshift": [s.redshift for s in rows],
            "peak_mjd": [s.peak_mjd for s in rows],
            "n_obs": [s.n_obs for s in rows],
            "mw_ebv": [s.mw_ebv for s in rows],
            "host_sep": [s.host_sep for s in rows],
            "host_mag_r": mags[has_host, 2],
            **{
                f"colour_{a}{b}": mags[has_host, k] - mags[has_host, k + 1]
                for k, (a, b) in enumerate(pairwise(LETTERS))
            },
            "matched_redshift": matched[has_match, 0],
            "matched_redshift_error": matched[has_match, 1],
        }
        quantiles = {}
        for name, values in columns.items():
            values = np.asarray(values, dtype=float)
            values = values[np.isfinite(values)]
            quantiles[name] = np.round(np.quantile(values, QUANTILE_LEVELS), 5).tolist()
        fitted["classes"][label] = {
            "count": len(rows),
            "host_fraction": round(float(has_host.mean()), 4),
            "matched_fraction": round(float(has_match.mean()), 4),
            "quantiles": quantiles,
        }
    return fitted


class FittedDistributions:
    """Draws from the per-class quantile tables (inverse-CDF, linear between quantiles)."""

    def __init__(self, fitted: dict):
        self._levels = np.asarray(fitted["quantile_levels"])
        self._classes = fitted["classes"]

    @classmethod
    def builtin(cls) -> FittedDistributions:
        """The tables fitted to the SDSS-II catalog, shipped with the package."""
        text = resources.files("convention.sim").joinpath("data", DISTRIBUTIONS_FILE).read_text()
        return cls(json.loads(text))

    def draw(self, label: str, name: str, rng: np.random.Generator) -> float:
        """One value of quantity ``name`` for class ``label``."""
        table = self._classes[label]["quantiles"][name]
        return float(np.interp(rng.random(), self._levels, table))

    def host_fraction(self, label: str) -> float:
        """Fraction of the class's objects with host magnitudes in the catalog."""
        return float(self._classes[label]["host_fraction"])

    def draw_matched_redshift(self, label: str, rng: np.random.Generator) -> tuple[float, float]:
        """A matched redshift and its error, with the class's fraction of them in the
        catalog (NaN, NaN otherwise); always three draws."""
        present, z, error = rng.random(), rng.random(), rng.random()
        if present >= self._classes[label]["matched_fraction"]:
            return float("nan"), float("nan")
        table = self._classes[label]["quantiles"]
        return (
            float(np.interp(z, self._levels, table["matched_redshift"])),
            float(np.interp(error, self._levels, table["matched_redshift_error"])),
        )

    def draw_host_mags(self, label: str, rng: np.random.Generator) -> np.ndarray:
        """u, g, r, i, z host magnitudes: r and the four colours from the class's tables."""
        r = self.draw(label, "host_mag_r", rng)
        ug, gr, ri, iz = (self.draw(label, f"colour_{a}{b}", rng) for a, b in pairwise(LETTERS))
        g = r + gr
        return np.array([g + ug, g, r, r - ri, r - ri - iz])

    def draw_specs(self, n_objects: int, rng: np.random.Generator) -> list[ObjectSpec]:
        """``n_objects`` specs with the paper's class fractions (largest remainder rounding),
        every quantity drawn from its class's table; ids ``sim000000``..."""
        total = sum(PAPER_CLASS_COUNTS.values())
        exact = np.array([n_objects * c / total for c in PAPER_CLASS_COUNTS.values()])
        counts = np.floor(exact).astype(int)
        counts[np.argsort(exact - counts)[::-1][: n_objects - counts.sum()]] += 1
        labels = np.repeat(list(PAPER_CLASS_COUNTS), counts)
        labels = labels[rng.permutation(len(labels))]
        # A stream of its own, so that the other draws stay what they were without it.
        (matched_rng,) = rng.spawn(1)
        specs = []
        for k, label in enumerate(labels):
            has_host = rng.random() < self.host_fraction(label)
            mags = self.draw_host_mags(label, rng) if has_host else np.full(5, np.nan)
            matched = self.draw_matched_redshift(label, matched_rng)
            specs.append(
                ObjectSpec(
                    object_id=f"sim{k:06d}",
                    label=str(label),
                    ra=float(np.mod(rng.uniform(*STRIPE82_RA), 360.0)),
                    dec=float(rng.uniform(*STRIPE82_DEC)),
                    redshift=np.nan,
                    peak_mjd=self.draw(label, "peak_mjd", rng),
                    n_obs=round(self.draw(label, "n_obs", rng)),
                    mw_ebv=self.draw(label, "mw_ebv", rng),
                    host_mags=tuple(mags),
                    host_sep=self.draw(label, "host_sep", rng),
                    matched_redshift=matched[0],
                    matched_redshift_error=matched[1],
                )
            )
        return specs
