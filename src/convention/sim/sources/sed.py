"""Spectral sources through the survey's filters: sncosmo models with host and MW dust."""

from __future__ import annotations

import numpy as np
import sncosmo
from astropy.cosmology import Planck18

from convention.sim.filters import bandpass

COSMOLOGY = Planck18
R_V = 3.1


def dusty_model(source: sncosmo.Source) -> sncosmo.Model:
    """An sncosmo Model with CCM89 dust in the host (rest frame) and the Milky Way (observer)."""
    return sncosmo.Model(
        source=source,
        effects=[sncosmo.CCM89Dust(), sncosmo.CCM89Dust()],
        effect_names=["host", "mw"],
        effect_frames=["rest", "obs"],
    )


def set_model(
    model: sncosmo.Model,
    z: float,
    t0: float,
    peak_abs_mag_b: float,
    host_ebv: float,
    mw_ebv: float,
) -> None:
    """Place the model at redshift ``z`` (luminosity distance from Planck18) with its rest
    frame Bessell-B peak at ``peak_abs_mag_b`` (AB) before dust."""
    # sncosmo scales the amplitude it has: from 1, not from the last use of this (cached)
    # model, or the flux would carry the rounding of whatever was drawn before.
    model.set(z=z, t0=t0, hostebv=host_ebv, hostr_v=R_V, mwebv=mw_ebv, mwr_v=R_V, amplitude=1.0)
    model.set_source_peakabsmag(peak_abs_mag_b, "bessellb", "ab", cosmo=COSMOLOGY)


def band_fluxes(model: sncosmo.Model, times: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """Flux in nanomaggies (AB zero point 22.5) at each (time, band); zero outside the model."""
    out = np.zeros(len(times))
    for band in np.unique(bands):
        sel = bands == band
        out[sel] = model.bandflux(bandpass(str(band)), times[sel], zp=22.5, zpsys="ab")
    return np.clip(out, 0.0, None)
