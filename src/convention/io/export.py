"""Light curves of a store's objects, for the light-curve writers."""

from __future__ import annotations

from collections.abc import Iterator

from convention.data.lightcurve import LabelledLightCurve
from convention.data.store import Store
from convention.errors import ConventionError

PHOTOMETRY = ("auto", "source", "psf", "aperture")


def resolve_photometry(store: Store, photometry: str) -> str:
    """``auto`` -> ``source`` when the store's objects carry light curves, else ``psf``."""
    if photometry not in PHOTOMETRY:
        raise ConventionError(f"unknown photometry {photometry!r}; known: {', '.join(PHOTOMETRY)}")
    if photometry == "auto":
        return "source" if len(store) and store[0].lightcurve is not None else "psf"
    return photometry


def store_lightcurves(store: Store, photometry: str = "auto") -> Iterator[LabelledLightCurve]:
    """Each object's light curve: its own (``source``: alerts' photometry, PLAsTiCC's) or
    forced photometry on its stamps (``psf``, ``aperture``) after subtracting each band's
    median stamp (difference fluxes, as SNANA light curves hold); ``auto`` picks ``source``
    where the store has light curves, else ``psf``.

    Raises:
        ConventionError: an unknown photometry, or ``source`` for an object without one.
    """
    photometry = resolve_photometry(store, photometry)
    for series in store:
        if photometry == "source":
            if series.lightcurve is None:
                raise ConventionError(
                    "object has no light curve of its own; use --photometry aperture",
                    path=store.path,
                    obj=series.object_id,
                )
            lc = series.lightcurve
        else:
            lc = series.to_lightcurve(method=photometry, reference="median")
        yield LabelledLightCurve(
            object_id=series.object_id,
            lightcurve=lc,
            label=series.label,
            redshift=series.redshift,
            ra=series.ra,
            dec=series.dec,
        )
