"""Variable stars: RR Lyrae (ab and c), eclipsing binaries, long-period variables. No host.

Periods and amplitudes: RR Lyrae from Sesar et al. (2010, ApJ 708, 717; Stripe 82), with
band amplitude ratios A_u:A_g:A_r:A_i:A_z ~ 1.25:1:0.72:0.57:0.52; eclipsing binaries with
log-normal periods around a day; Mira and semi-regular variables with periods of 100-500 d
and amplitudes growing to the blue. Proportions among the SDSS-II "Variable" candidates are
assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convention.sim.sources.agn import ornstein_uhlenbeck

SUBTYPES = ("RRab", "RRc", "EB", "LPV")
FRACTIONS = (0.25, 0.1, 0.4, 0.25)
RR_AMPLITUDE_RATIO = np.array([1.25, 1.0, 0.72, 0.57, 0.52])
LPV_AMPLITUDE_RATIO = np.array([1.4, 1.2, 1.0, 0.7, 0.5])
# Typical SDSS colours (u-g, g-r, r-i, i-z) used when the catalog has none.
COLOURS = {
    "RRab": (1.15, 0.20, 0.05, 0.0),
    "RRc": (1.15, 0.15, 0.03, 0.0),
    "EB": (1.30, 0.50, 0.18, 0.08),
    "LPV": (2.50, 1.40, 1.20, 0.70),
}


def rr_lyrae_ab_shape(phase: np.ndarray) -> np.ndarray:
    """Brightness in [0, 1] of an RRab: fast rise over 15% of the cycle, slow decline."""
    rise = 0.15
    return np.where(phase < rise, phase / rise, ((1.0 - phase) / (1.0 - rise)) ** 1.5)


def eclipse_shape(phase: np.ndarray, width: float, secondary: float) -> np.ndarray:
    """Depth in [0, 1] of a detached binary: primary eclipse at phase 0, secondary at 0.5."""
    d1 = np.minimum(np.abs(phase), np.abs(phase - 1.0))
    d2 = np.abs(phase - 0.5)
    primary = np.clip(1.0 - (d1 / width) ** 2, 0.0, None)
    return np.maximum(primary, secondary * np.clip(1.0 - (d2 / width) ** 2, 0.0, None))


@dataclass(frozen=True)
class VariableStar:
    """A variable star of mean magnitudes ``mean_mags`` (per survey band)."""

    subtype: str
    mean_mags: tuple[float, ...]
    period: float  # days
    amplitude_g: float  # mag (peak to peak; eclipse depth for EB)
    epoch: float  # MJD of phase 0
    secondary: float  # secondary eclipse depth relative to the primary (EB)
    width: float  # eclipse half width in phase (EB)
    seed: int
    host: None = None

    @classmethod
    def draw(
        cls, mean_mags: np.ndarray | None, r_mag: float, rng: np.random.Generator
    ) -> VariableStar:
        """A subtype by the fractions above; ``mean_mags`` (or ``r_mag`` and its typical
        colours) set the mean brightness."""
        subtype = str(rng.choice(SUBTYPES, p=FRACTIONS))
        if mean_mags is None or not np.all(np.isfinite(mean_mags)):
            ug, gr, ri, iz = COLOURS[subtype]
            g = r_mag + gr
            mean_mags = np.array([g + ug, g, r_mag, r_mag - ri, r_mag - ri - iz])
        secondary, width = 0.0, 0.0
        if subtype == "RRab":
            period, amp = rng.uniform(0.45, 0.75), rng.uniform(0.6, 1.1)
        elif subtype == "RRc":
            period, amp = rng.uniform(0.25, 0.42), rng.uniform(0.3, 0.55)
        elif subtype == "EB":
            period = float(np.clip(10 ** rng.normal(0.0, 0.4), 0.22, 20.0))
            amp, secondary, width = (
                rng.uniform(0.1, 1.0),
                rng.uniform(0.1, 0.9),
                rng.uniform(0.04, 0.12),
            )
        else:
            period, amp = 10 ** rng.uniform(2.0, 2.7), rng.uniform(0.3, 2.0)
        return cls(
            subtype,
            tuple(float(m) for m in mean_mags),
            float(period),
            float(amp),
            float(rng.uniform(0.0, period)),
            float(secondary),
            float(width),
            int(rng.integers(2**31)),
        )

    def magnitude_offsets(self, mjd: np.ndarray, band_index: np.ndarray) -> np.ndarray:
        """Magnitude minus mean magnitude at each (mjd, band)."""
        phase = np.mod((np.asarray(mjd) - self.epoch) / self.period, 1.0)
        if self.subtype == "RRab":
            shape = rr_lyrae_ab_shape(phase)
            return -self.amplitude_g * RR_AMPLITUDE_RATIO[band_index] * (shape - 0.4)
        if self.subtype == "RRc":
            return (
                -0.5 * self.amplitude_g * RR_AMPLITUDE_RATIO[band_index] * np.sin(2 * np.pi * phase)
            )
        if self.subtype == "EB":
            return self.amplitude_g * eclipse_shape(phase, self.width, self.secondary)
        # LPV: a sinusoid plus 10% irregular (damped random walk) modulation
        rng = np.random.default_rng(self.seed)
        irregular = 0.1 * ornstein_uhlenbeck(np.asarray(mjd), self.period / 2, rng)
        wave = 0.5 * np.sin(2 * np.pi * phase) + irregular
        return -self.amplitude_g * LPV_AMPLITUDE_RATIO[band_index] * wave

    def flux(
        self, mjd: np.ndarray, band_index: np.ndarray, band_names: tuple[str, ...]
    ) -> np.ndarray:
        """Star flux (nanomaggies)."""
        mags = np.asarray(self.mean_mags)[band_index] + self.magnitude_offsets(mjd, band_index)
        return 10 ** (-0.4 * (mags - 22.5))
