"""``heatmap``: one Gaussian-process image of the forced photometry per object (SCONE's
input, Qu et al. 2021, AJ 162, 67). Key: ``heatmap`` (2, wavelength, time) float32, the GP
mean and standard deviation of the frames read (each heatmap scaled on its own: nothing
to fit).

Each band's flux sits at the band's effective wavelength; a Matern-3/2 GP over (days,
Angstrom) with every point's own error interpolates the whole (wavelength, time) plane.
The heatmap holds the GP mean and standard deviation on a fixed grid, both divided by the
light curve's largest absolute flux, so objects of any brightness share one scale.
The kernel's length scales are fixed (20 days, 3000 Angstrom), the amplitude is that of
the normalised fluxes: one Cholesky solve per object, no per-object optimisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from astropy.table import Table

from convention.bands import get_band
from convention.inputs.base import InputKind, Needs, Selection, register_input_kind
from convention.inputs.spec import InputSpec
from convention.lightcurves import FORCED_PSF, lightcurve_of

LENGTH_SCALES = (20.0, 3000.0)  # days, Angstrom


def heatmap(lc: Table, bands: Sequence[str], wavelength_bins: int, time_bins: int) -> np.ndarray:
    """(2, wavelength_bins, time_bins) GP mean and standard deviation of a light curve.

    Args:
        lc: light-curve Table (mjd, band, flux, flux_err).
        bands: the bands that set the wavelength range (bluest to reddest).
        wavelength_bins, time_bins: grid size; time spans the first to the last point.
    """
    waves = np.array([get_band(b).wavelength_eff for b in bands])
    mjd = np.asarray(lc["mjd"], dtype=np.float64)
    flux = np.asarray(lc["flux"], dtype=np.float64)
    err = np.asarray(lc["flux_err"], dtype=np.float64)
    wave = np.array([get_band(b).wavelength_eff for b in lc["band"]])
    good = np.isfinite(mjd) & np.isfinite(flux) & np.isfinite(err) & (err > 0)
    out = np.zeros((2, wavelength_bins, time_bins), dtype=np.float32)
    if not good.any():
        return out
    mjd, flux, err, wave = mjd[good], flux[good], err[good], wave[good]
    scale = max(float(np.max(np.abs(flux))), 1e-12)
    t0, span = mjd.min(), max(mjd.max() - mjd.min(), 1.0)
    # Imported here: every process that reads the input registry would pay scikit-learn's
    # import (most of a second) for the one kind that uses it.
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern

    kernel = ConstantKernel(1.0, "fixed") * Matern(LENGTH_SCALES, "fixed", nu=1.5)
    gp = GaussianProcessRegressor(kernel, alpha=(err / scale) ** 2, optimizer=None)
    gp.fit(np.column_stack([mjd - t0, wave]), flux / scale)
    grid_t = np.linspace(0.0, span, time_bins)
    grid_w = np.linspace(waves.min(), waves.max(), wavelength_bins)
    tt, ww = np.meshgrid(grid_t, grid_w)
    mean, std = gp.predict(np.column_stack([tt.ravel(), ww.ravel()]), return_std=True)
    out[0] = mean.reshape(wavelength_bins, time_bins)
    out[1] = std.reshape(wavelength_bins, time_bins)
    return out


@register_input_kind("heatmap")
class Heatmap(InputKind):
    """The light curve as a (wavelength, time) image."""

    needs = Needs(photometry=(FORCED_PSF,))
    fixed = ("heatmap",)

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        # The frames read on their own: a band without a template falls back to the
        # median of the frames read.
        lc = lightcurve_of(selection.series[selection.index], FORCED_PSF)
        return {"heatmap": heatmap(lc, self.bands, *self.spec.heatmap_shape)}

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return f"{spec.heatmap_shape[0]}x{spec.heatmap_shape[1]} heatmap"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        return {"heatmap": torch.zeros(1, 2, *spec.heatmap_shape)}
