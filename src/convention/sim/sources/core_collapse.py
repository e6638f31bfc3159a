"""Core-collapse supernovae: a cooling blackbody photosphere with a light-curve template.

The SED at rest-frame phase t (days since explosion) is a blackbody at T(t), scaled to the
luminosity template L(t), with line blanketing below 4000 A. Each subtype has its own rise,
decline and cooling; peak magnitudes follow the luminosity functions of Richardson et al.
(2014, AJ 147, 118), proportions the volume-limited LOSS sample (Smith et al. 2011, MNRAS
412, 1522; IIb counted with Ib/c).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import sncosmo
from astropy import constants as const

from convention.sim.sources.host import HostGalaxy
from convention.sim.sources.sed import band_fluxes, dusty_model, set_model
from convention.sim.sources.snia import TAU_V_HOST


@dataclass(frozen=True)
class Template:
    """Shape of one subtype (rest frame).

    Attributes:
        rise_days: e-folding time of the rise, days.
        declines: (until_day, mag_per_day) pieces of the post-rise decline.
        t_hot, t_cool, cooling_days: photosphere temperature T = t_cool + (t_hot - t_cool)
            exp(-t / cooling_days), Kelvin.
        uv_index: line blanketing, flux times (lambda / 4000 A) ** uv_index below 4000 A.
        peak_mag_b, peak_sigma_b: luminosity function, Bessell B (Richardson et al. 2014).
        fraction: share among core-collapse supernovae.
    """

    rise_days: float
    declines: tuple[tuple[float, float], ...]
    t_hot: float
    t_cool: float
    cooling_days: float
    uv_index: float
    peak_mag_b: float
    peak_sigma_b: float
    fraction: float


TEMPLATES = {
    # Plateau ~100 d, drop of ~2 mag, then the 56Co tail at 0.98 mag / 100 d.
    "IIP": Template(
        3.0, ((95, 0.006), (115, 0.1), (400, 0.0098)), 16000, 6000, 12, 2.0, -16.80, 0.97, 0.482
    ),
    "IIL": Template(4.0, ((80, 0.03), (400, 0.0098)), 15000, 5500, 18, 1.5, -17.98, 0.90, 0.064),
    "IIn": Template(10.0, ((400, 0.012),), 12000, 7500, 60, 0.5, -18.62, 1.48, 0.088),
    # Stripped envelope: fast Arnett-like peak, 0.07 mag/d for three weeks, then 0.02 mag/d.
    "Ibc": Template(5.0, ((30, 0.07), (400, 0.02)), 11000, 5000, 15, 3.0, -17.55, 1.15, 0.366),
}
SUBTYPES = tuple(TEMPLATES)
_PHASES = np.concatenate([np.arange(0.0, 60.0, 0.5), np.arange(60.0, 401.0, 2.0)])
_WAVE = np.arange(1000.0, 12000.0, 20.0)


def _luminosity_shape(t: np.ndarray, tpl: Template) -> np.ndarray:
    """Relative luminosity: a saturating rise times a piecewise-linear magnitude decline."""
    decline = np.zeros_like(t)
    start, level = 0.0, 0.0
    for until, slope in tpl.declines:
        span = np.clip(t - start, 0.0, until - start)
        decline = np.where(t > start, level + slope * span, decline)
        level += slope * (until - start)
        start = until
    rise = (1.0 - np.exp(-t / tpl.rise_days)) ** 2
    return rise * 10 ** (-0.4 * decline)


def _blackbody_flambda(wave_aa: np.ndarray, temp: np.ndarray) -> np.ndarray:
    """B_lambda (arbitrary normalisation) on a (phase, wave) grid."""
    hc_k = (const.h * const.c / const.k_B).to("K Angstrom").value
    x = hc_k / (wave_aa[None, :] * temp[:, None])
    return 1.0 / (wave_aa[None, :] ** 5 * np.expm1(np.minimum(x, 700.0)))


@cache
def template_source(subtype: str) -> sncosmo.TimeSeriesSource:
    """The subtype's SED time series as an sncosmo source (phase 0 = explosion)."""
    tpl = TEMPLATES[subtype]
    temp = tpl.t_cool + (tpl.t_hot - tpl.t_cool) * np.exp(-_PHASES / tpl.cooling_days)
    sed = _blackbody_flambda(_WAVE, temp)
    sed /= np.trapezoid(sed, _WAVE, axis=1)[:, None]  # unit bolometric flux, then scale to L
    sed *= _luminosity_shape(_PHASES, tpl)[:, None]
    sed *= np.where(_WAVE < 4000.0, (_WAVE / 4000.0) ** tpl.uv_index, 1.0)[None, :]
    return sncosmo.TimeSeriesSource(_PHASES, _WAVE, sed, zero_before=True, name=f"cc-{subtype}")


@cache
def _model(subtype: str) -> sncosmo.Model:
    return dusty_model(template_source(subtype))


def peak_phase(subtype: str) -> float:
    """Rest-frame days from explosion to the luminosity peak."""
    shape = _luminosity_shape(_PHASES, TEMPLATES[subtype])
    return float(_PHASES[int(np.argmax(shape))])


@dataclass(frozen=True)
class CoreCollapseSN:
    """A core-collapse SN. ``t_explosion`` is an observer-frame MJD."""

    subtype: str
    z: float
    t_explosion: float
    stretch: float
    peak_abs_mag_b: float
    host_ebv: float
    mw_ebv: float
    host: HostGalaxy | None

    @classmethod
    def draw(
        cls,
        z: float,
        t_peak: float,
        mw_ebv: float,
        host: HostGalaxy | None,
        rng: np.random.Generator,
    ) -> CoreCollapseSN:
        """Subtype by the LOSS proportions, peak magnitude from its luminosity function
        (truncated at 2 sigma), time scale varied by a lognormal stretch (0.15 dex)."""
        fractions = np.array([TEMPLATES[s].fraction for s in SUBTYPES])
        subtype = str(rng.choice(SUBTYPES, p=fractions / fractions.sum()))
        tpl = TEMPLATES[subtype]
        mag = tpl.peak_mag_b + tpl.peak_sigma_b * float(np.clip(rng.standard_normal(), -2, 2))
        stretch = float(10 ** (0.15 * np.clip(rng.standard_normal(), -2, 2)))
        t_explosion = t_peak - peak_phase(subtype) * stretch * (1.0 + z)
        host_ebv = rng.exponential(TAU_V_HOST) / 3.1
        return cls(subtype, z, t_explosion, stretch, mag, float(host_ebv), mw_ebv, host)

    def seen_at(self, z: float, host: HostGalaxy | None) -> CoreCollapseSN:
        """The same supernova at redshift ``z`` in ``host``, peaking at the same MJD (its
        rise from the explosion dilated by the new 1 + z)."""
        rise = peak_phase(self.subtype) * self.stretch
        t_explosion = self.t_explosion + rise * (self.z - z)
        return replace(self, z=z, t_explosion=t_explosion, host=host)

    def flux(
        self, mjd: np.ndarray, band_index: np.ndarray, band_names: tuple[str, ...]
    ) -> np.ndarray:
        """Point-source flux (nanomaggies); zero before explosion."""
        model = _model(self.subtype)
        set_model(model, self.z, 0.0, self.peak_abs_mag_b, self.host_ebv, self.mw_ebv)
        return band_fluxes(
            model,
            (np.asarray(mjd) - self.t_explosion) / self.stretch,
            np.asarray(band_names)[band_index],
        )
