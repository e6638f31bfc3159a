"""AGN: a damped random walk (DRW) nucleus on its host, after MacLeod et al. (2010, ApJ 721,
1014), the Stripe 82 quasar study.

One unit-variance Ornstein-Uhlenbeck process drives all bands (correlation RHO), each band
scaled by its own asymptotic structure function SF_inf(lambda) ~ lambda_rest ** -0.479
(MacLeod et al. 2010, eq. 7 slope); the DRW variance is SF_inf^2 / 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convention.sim.sources.host import HostGalaxy

LOG_TAU_REST = (2.4, 0.3)  # log10 days: mean, sigma (MacLeod et al. 2010, Fig. 11)
LOG_SF_INF_R = (np.log10(0.2), 0.15)  # log10 mag in r
SF_WAVELENGTH_SLOPE = -0.479
RHO = 0.9  # inter-band correlation of the variations (assumed; observed > 0.8)


def ornstein_uhlenbeck(times: np.ndarray, tau: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance OU process sampled exactly at sorted ``times`` (days)."""
    x = np.empty(len(times))
    if len(times) == 0:
        return x
    x[0] = rng.standard_normal()
    decay = np.exp(-np.diff(times) / tau)
    kicks = rng.standard_normal(len(times) - 1) * np.sqrt(1.0 - decay**2)
    for k in range(1, len(times)):
        x[k] = x[k - 1] * decay[k - 1] + kicks[k - 1]
    return x


@dataclass(frozen=True)
class AGN:
    """An AGN nucleus of mean magnitudes ``mean_mags`` (per survey band)."""

    z: float
    mean_mags: tuple[float, ...]
    tau_rest: float
    sf_inf: tuple[float, ...]  # mag, per survey band
    seed: int
    host: HostGalaxy | None
    subtype: str = "AGN"

    @classmethod
    def draw(
        cls,
        z: float,
        mean_mags: np.ndarray,
        wavelengths: np.ndarray,
        host: HostGalaxy | None,
        rng: np.random.Generator,
    ) -> AGN:
        """DRW parameters from the MacLeod et al. (2010) distributions."""
        tau = 10 ** rng.normal(*LOG_TAU_REST)
        sf_r = 10 ** rng.normal(*LOG_SF_INF_R)
        ratio = (np.asarray(wavelengths) / wavelengths[2]) ** SF_WAVELENGTH_SLOPE
        return cls(
            z, tuple(mean_mags), float(tau), tuple(sf_r * ratio), int(rng.integers(2**31)), host
        )

    def flux(
        self, mjd: np.ndarray, band_index: np.ndarray, band_names: tuple[str, ...]
    ) -> np.ndarray:
        """Nucleus flux (nanomaggies) at observer-frame ``mjd``; ``band_index`` selects the
        per-band mean magnitude and structure function."""
        rng = np.random.default_rng(self.seed)
        tau_obs = self.tau_rest * (1.0 + self.z)
        common = ornstein_uhlenbeck(np.asarray(mjd), tau_obs, rng)
        own = np.empty(len(mjd))
        for b in np.unique(band_index):
            sel = band_index == b
            own[sel] = ornstein_uhlenbeck(np.asarray(mjd)[sel], tau_obs, rng)
        unit = RHO * common + np.sqrt(1.0 - RHO**2) * own
        sigma = np.asarray(self.sf_inf)[band_index] / np.sqrt(2.0)
        mags = np.asarray(self.mean_mags)[band_index] + sigma * unit
        return 10 ** (-0.4 * (mags - 22.5))
