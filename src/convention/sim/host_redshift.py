"""What catalogues say of an object's host redshift and of the Milky Way's dust before it,
as the SDSS-II twin's objects carry them (``convention.metadata``: ``host_redshift``,
``host_redshift_error``, ``mw_ebv``).

A host whose redshift the SDSS-II catalogue holds (a spectrum of the supernova or its
host) is given it, spectroscopic, with a 0.0005 error (assumed: SDSS spectra's redshift
errors are of the order of 1e-4). Any other host has a photometric redshift: the true one
plus a Gaussian scatter of 0.03 (1 + z), reported with that error, and a catastrophic
5% drawn evenly over 0-0.8 (both assumed, of the order of SDSS's photometric redshifts of
galaxies brighter than r ~ 21: Beck et al. 2016, MNRAS 460, 1371). A hostless supernova
has none. A Galactic object (a variable star) has what the catalogue gives the source it
matched as host: SDSS-II matched 94% of its variables to a source a median 0.18 arcsec
away, gives 62.5% of them a photometric redshift from galaxy templates (median 0.21) and
29% a final redshift of 1e-4 or better (median 0.10), so a catalogue's redshift is no
sign of a galaxy. The final redshift where the catalogue has one, else the photometric
one: the candidate's own for a catalogue twin, drawn from the class's for a drawn one.
The Milky Way E(B-V) is the object's own (the catalogue's SFD value, or its drawn one).
"""

from __future__ import annotations

import numpy as np

SPECTROSCOPIC_ERROR = 0.0005  # assumed
PHOTOMETRIC_SCATTER = 0.03  # sigma_z / (1 + z), assumed
CATASTROPHIC_FRACTION = 0.05  # assumed
CATASTROPHIC_RANGE = (0.0, 0.8)


def host_redshift_fields(
    z: float,
    spectroscopic: bool,
    has_host: bool,
    mw_ebv: float,
    rng: np.random.Generator,
    matched: tuple[float, float] = (float("nan"), float("nan")),
) -> dict[str, float]:
    """The object's redshift and dust fields, keyed by ``convention.metadata`` name.

    Args:
        z: the object's true redshift (0 for a Galactic one).
        spectroscopic: its catalogue holds a spectroscopic redshift.
        has_host: it has a host galaxy to measure.
        mw_ebv: its Milky Way E(B-V), mag.
        rng: the object's stream for catalogue draws (always three draws, so that the
            stream does not depend on the branch).
        matched: the catalogue's redshift and error of the source it matched as host
            (NaN: none), what a Galactic object (``z`` 0) carries.
    """
    scatter, catastrophic, uniform = rng.standard_normal(), rng.random(), rng.random()
    fields = {"mw_ebv": float(mw_ebv)} if np.isfinite(mw_ebv) else {}
    if not z > 0:
        if not np.isfinite(matched[0]):
            return fields
        return fields | {
            "host_redshift": float(matched[0]),
            "host_redshift_error": float(matched[1]),
        }
    if not has_host:
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
