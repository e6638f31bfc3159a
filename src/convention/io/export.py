"""Light curves of a store's objects, for the light-curve writers."""

from __future__ import annotations

from collections.abc import Iterator

from convention.data.lightcurve import LabelledLightCurve
from convention.data.store import Store
from convention.errors import ConventionError
from convention.lightcurves import PhotometryRule, lightcurve_of

# The --photometry choices of ``convention export snana`` and their rules.
PHOTOMETRY = {
    "source": PhotometryRule("supplied"),
    "psf": PhotometryRule("forced", "psf"),
    "aperture": PhotometryRule("forced", "aperture"),
}


def resolve_photometry(store: Store, photometry: str) -> str:
    """``auto`` -> ``source`` when the store's objects carry light curves, else ``psf``.

    Raises:
        ConventionError: an unknown photometry.
    """
    if photometry != "auto" and photometry not in PHOTOMETRY:
        known = ", ".join(["auto", *PHOTOMETRY])
        raise ConventionError(f"unknown photometry {photometry!r}; known: {known}")
    if photometry == "auto":
        return "source" if len(store) and store[0].lightcurve is not None else "psf"
    return photometry


def store_lightcurves(store: Store, photometry: str = "auto") -> Iterator[LabelledLightCurve]:
    """Each object's light curve (``lightcurves.lightcurve_of``): its own (``source``:
    alerts' photometry, PLAsTiCC's) or forced photometry on its stamps (``psf``,
    ``aperture``) less each band's reference stamp (difference fluxes, as SNANA light
    curves hold); ``auto`` picks ``source`` where the store has light curves, else ``psf``.

    Raises:
        ConventionError: an unknown photometry, or ``source`` for an object without one.
    """
    rule = PHOTOMETRY[resolve_photometry(store, photometry)]
    for series in store:
        try:
            lc = lightcurve_of(series, rule)
        except ConventionError as err:
            raise ConventionError(
                f"{err.cause}; use --photometry aperture", path=store.path, obj=err.obj
            ) from None
        yield LabelledLightCurve(
            object_id=series.object_id,
            lightcurve=lc,
            label=series.label,
            redshift=series.redshift,
            ra=series.ra,
            dec=series.dec,
        )
