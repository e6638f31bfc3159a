"""``difference``: each frame less its band's reference, the transient alone.

A survey finds its transients on difference images: the frame less its template, the
sharper of the two convolved to the other's PSF. A source that gives them (ZTF's and
Rubin's ``cutoutDifference``, which the alert stream reads for this kind, or a store's
``difference`` channel) is read as it is: a survey's own subtraction uses its measured
PSFs and registration (on a real ZTF alert in a crowded field, ZTF18aaxjdyr, its
difference leaves the transient alone where one made through a Moffat kernel between
assumed seeings leaves the field's stars). Otherwise each frame read is differenced against
its band's reference exactly as forced photometry measures it
(``photometry.difference_stamps``; what the twins' packets carry as their difference
cutouts), so the host galaxy and any quiescent source leave the stamps and the light
that changes stays.

Keys: ``diff`` (M, H, W) float32 ``asinh(d / scale_b)``, ``scale_b`` the robust sigma of
the band's frame pixels on the training split (a difference has no level of its own:
median 0), missing pixels 0; ``diff_bands`` (M,) int64 band indices; ``diff_times`` (M,)
float32 days since the first frame; ``diff_mask`` (M,) after collation. The frames are
those the ``stamps`` kind reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convention.data.series import StampSeries
from convention.inputs.base import Needs, Selection, register_input_kind
from convention.inputs.normalisation import Normalisation
from convention.inputs.spec import InputSpec
from convention.inputs.stamps import Stamps
from convention.photometry import DIFFERENCE_CHANNEL, difference_stamps

KEYS = ("diff", "diff_bands", "diff_times", "diff_mask")


@register_input_kind("difference")
class Difference(Stamps):
    """The difference-stamp sequence (the source's, else frame less PSF-matched reference),
    normalised as the frames are."""

    needs = Needs(pixels=True, references=True, own_channels=(DIFFERENCE_CHANNEL,))
    sequence = KEYS[:3]
    mask = KEYS[3]

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """Per-band robust sigma of the training split's frame pixels, median 0."""
        pixels = Normalisation.fit_pixels(series, self.bands, seed=seed)
        self._set(Normalisation(pixels.bands, (0.0,) * len(pixels.bands), pixels.scale))

    def images(self, selection: Selection) -> np.ndarray:
        """(M, H, W) float32 the source's difference stamps of the frames read, else each
        frame less its band's PSF-matched reference."""
        series = selection.series
        if DIFFERENCE_CHANNEL in series.channels:
            own = series.channels[DIFFERENCE_CHANNEL][selection.index]  # a copy
            return own.astype(np.float32, copy=False)
        read = series[selection.index]
        return difference_stamps(read, selection.references).astype(np.float32)

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return f"{spec.max_frames} difference stamps of {spec.stamp_size}x{spec.stamp_size}"
