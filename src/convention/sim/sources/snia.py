"""Type Ia supernovae: the Hsiao et al. (2007) spectral template bundled with sncosmo."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import sncosmo

from convention.sim.sources.host import HostGalaxy
from convention.sim.sources.sed import band_fluxes, dusty_model, set_model

# Peak M_B = -19.3 - ALPHA (s - 1) + N(0, 0.12): the stretch-luminosity relation (Phillips
# 1993; Perlmutter et al. 1997 stretch) with the scatter left after standardisation.
M_B_PEAK = -19.3
ALPHA_STRETCH = 1.5
M_B_SCATTER = 0.12
STRETCH_MEAN, STRETCH_SIGMA = 1.0, 0.1
# Host extinction A_V exponential with tau_V = 0.33 (SDSS-II, Kessler et al. 2009).
TAU_V_HOST = 0.33


@cache
def _model() -> sncosmo.Model:
    return dusty_model(sncosmo.get_source("hsiao-subsampled"))


@dataclass(frozen=True)
class SNIa:
    """An SN Ia. ``t_peak``: observer-frame MJD of rest-frame B maximum."""

    z: float
    t_peak: float
    stretch: float
    peak_abs_mag_b: float
    host_ebv: float
    mw_ebv: float
    host: HostGalaxy | None
    subtype: str = "Ia"

    @classmethod
    def draw(
        cls,
        z: float,
        t_peak: float,
        mw_ebv: float,
        host: HostGalaxy | None,
        rng: np.random.Generator,
    ) -> SNIa:
        """Stretch, peak magnitude and host dust drawn from the distributions above."""
        stretch = float(np.clip(rng.normal(STRETCH_MEAN, STRETCH_SIGMA), 0.7, 1.3))
        mag = M_B_PEAK - ALPHA_STRETCH * (stretch - 1.0) + rng.normal(0.0, M_B_SCATTER)
        host_ebv = rng.exponential(TAU_V_HOST) / 3.1
        return cls(z, t_peak, stretch, float(mag), float(host_ebv), mw_ebv, host)

    def seen_at(self, z: float, host: HostGalaxy | None) -> SNIa:
        """The same supernova at redshift ``z`` in ``host``."""
        return replace(self, z=z, host=host)

    def flux(
        self, mjd: np.ndarray, band_index: np.ndarray, band_names: tuple[str, ...]
    ) -> np.ndarray:
        """Point-source flux (nanomaggies); the stretch dilates the template's time axis."""
        model = _model()
        set_model(model, self.z, 0.0, self.peak_abs_mag_b, self.host_ebv, self.mw_ebv)
        return band_fluxes(
            model,
            (np.asarray(mjd) - self.t_peak) / self.stretch,
            np.asarray(band_names)[band_index],
        )
