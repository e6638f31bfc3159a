"""Peak absolute magnitudes: the forced light curve's peak less the distance modulus of the
host's redshift, read by the ``luminosity`` input kind, the flagship and boosting."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.cosmology import Planck18

from convention.data import Store
from convention.data.lightcurve import make_lightcurve
from convention.features import absolute_peak_magnitudes, distance_modulus
from convention.inputs import InputEncoder, InputSpec
from convention.psf import moffat_psf
from tests.helpers import flagship_reads
from tests.test_series import make_series

GR = ["sdss::g", "sdss::r"]


def test_the_peak_detected_in_a_band_less_the_distance_modulus():
    lc = make_lightcurve(
        [1.0, 2.0, 3.0, 4.0, 5.0],
        ["g", "g", "g", "r", "r"],
        [10.0, 100.0, 40.0, 20.0, 2.0],
        [1.0, 1.0, 1.0, 10.0, 1.0],
        survey="sdss2",
    )
    modulus = Planck18.distmod(0.2).value
    assert distance_modulus(0.2) == pytest.approx(modulus, abs=1e-4)
    # g peaks at 100 nanomaggies (17.5 mag); r is never 3 sigma above zero: not measured.
    g, r = absolute_peak_magnitudes(lc, GR, 0.2)
    assert g == pytest.approx(17.5 - modulus, abs=1e-4)
    assert np.isnan(r)
    # Galactic (PLAsTiCC's 0), not measured: no distance, so no absolute magnitude.
    for redshift in (0.0, float("nan")):
        assert np.isnan(absolute_peak_magnitudes(lc, GR, redshift)).all()
    # The rows read are the frames read: without its peak, g's brightest is 10 nanomaggies.
    first = absolute_peak_magnitudes(lc, GR, 0.2, np.array([0, 3]))
    assert first[0] == pytest.approx(22.5 - 2.5 * np.log10(10.0) - modulus, abs=1e-4)


def _supernova(redshift: float | None) -> object:
    """Six frames of noise, a point source of 400 nanomaggies in the third (g)."""
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(6, 16, 16))
    frames[2] += 400.0 * moffat_psf((16, 16), 1.4 / 0.396)
    metadata = {} if redshift is None else {"host_redshift": redshift}
    return make_series(frames=frames, size=16, metadata=metadata)


def test_the_luminosity_kind_masks_what_it_cannot_measure_and_the_flagship_reads_it():
    spec = InputSpec(("luminosity",), 16)
    encoder = InputEncoder(spec, GR)
    encoder.fit([_supernova(0.1), _supernova(0.3)])
    g, r = encoder.kinds[0].raw(_supernova(0.1))
    assert g == pytest.approx(22.5 - 2.5 * np.log10(400.0) - Planck18.distmod(0.1).value, abs=0.1)
    assert np.isnan(r)
    measured = encoder.encode(_supernova(0.1)).inputs["luminosity"]
    assert measured[2:].tolist() == [0.0, 1.0]
    # No redshift, or one outside the field's range (a survey's null): every band masked.
    for redshift in (None, -1.0, float("inf")):
        values = encoder.encode(_supernova(redshift)).inputs["luminosity"]
        assert values.tolist() == [0.0, 0.0, 1.0, 1.0]
    assert flagship_reads("luminosity", GR, 16, [_supernova(0.1), _supernova(0.3)])


def test_boosting_reads_the_absolute_magnitudes_last(tiny_store):
    from convention.baselines.gbm import feature_matrix
    from convention.inputs.luminosity import Luminosity

    store = Store(tiny_store)
    rows = list(range(len(store)))
    plain = feature_matrix(store, rows, metadata=True)
    both = feature_matrix(store, rows, metadata=True, luminosity=True)
    n = len(store.bands)
    assert np.array_equal(both[:, :-n], plain, equal_nan=True)
    kind = Luminosity(InputSpec(("luminosity",), 16), store.bands)
    expected = np.array([kind.raw(store[row]) for row in rows])
    assert np.array_equal(both[:, -n:], expected, equal_nan=True)
    assert np.isfinite(expected).any()
