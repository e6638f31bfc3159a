"""What catalogues say of an object's host redshift and of the Milky Way's dust before it,
as the SDSS-II twin's objects carry them (``convention.metadata``: ``host_redshift``,
``host_redshift_error``, ``mw_ebv``).

A host whose redshift the SDSS-II catalogue holds (a spectrum of the supernova or its
host) is given it, spectroscopic, with a 0.0005 error (assumed: SDSS spectra's redshift
errors are of the order of 1e-4). Any other host has a photometric redshift: the true one
plus a Gaussian scatter of 0.03 (1 + z), reported with that error, and a catastrophic
5% drawn evenly over 0-0.8 (both assumed, of the order of SDSS's photometric redshifts of
galaxies brighter than r ~ 21: Beck et al. 2016, MNRAS 460, 1371). An object without a
host (a variable star, a hostless supernova) has none. The Milky Way E(B-V) is the
object's own (the catalogue's SFD value, or its drawn one).
"""

from __future__ import annotations

import numpy as np

SPECTROSCOPIC_ERROR = 0.0005  # assumed
PHOTOMETRIC_SCATTER = 0.03  # sigma_z / (1 + z), assumed
CATASTROPHIC_FRACTION = 0.05  # assumed
CATASTROPHIC_RANGE = (0.0, 0.8)


def host_redshift_fields(
    z: float, spectroscopic: bool, has_host: bool, mw_ebv: float, rng: np.random.Generator
) -> dict[str, float]:
    """The object's redshift and dust fields, keyed by ``convention.metadata`` name.

    Args:
        z: the object's true redshift (0 for a Galactic one).
        spectroscopic: its catalogue holds a spectroscopic redshift.
        has_host: it has a host galaxy to measure.
        mw_ebv: its Milky Way E(B-V), mag.
        rng: the object's stream for catalogue draws (always three draws, so that the
            stream does not depend on the branch).
    """
    scatter, catastrophic, uniform = rng.standard_normal(), rng.random(), rng.random()
    fields = {"mw_ebv": float(mw_ebv)} if np.isfinite(mw_ebv) else {}
    if not has_host or not z > 0:
        return fields
    if spectroscopic:
        return fields | {"host_redshift": float(z), "host_redshift_error": SPECTROSCOPIC_ERROR}
    error = PHOTOMETRIC_SCATTER * (1 + z)
    if catastrophic < CATASTROPHIC_FRACTION:
        low, high = CATASTROPHIC_RANGE
        estimate = low + (high - low) * uniform
    else:
        estimate = max(z + error * scatter, 0.0)
    return fields | {"host_redshift": float(estimate), "host_redshift_error": float(error)}
