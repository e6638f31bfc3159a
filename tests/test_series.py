import numpy as np
import pytest

from convention.data.series import StampSeries
from convention.errors import ConventionError


def make_series(m=6, size=8, **kw):
    rng = np.random.default_rng(0)
    args = dict(
        frames=rng.normal(size=(m, size, size)),
        mjd=53600.0 + np.arange(m),
        band=np.array(["sdss::g", "sdss::r"] * (m // 2)),
        psf_fwhm=np.full(m, 1.4),
        sky_sigma=np.ones(m),
        zeropoint=np.full(m, 28.0),
        object_id="obj1",
        survey="sdss2",
        pixel_scale=0.396,
        label="SNIa",
    )
    args.update(kw)
    return StampSeries(**args)


def test_fields_and_types():
    s = make_series()
    assert s.frames.dtype == np.float32 and s.shape == (6, 8, 8)
    assert s.band.tolist() == [2, 3] * 3
    assert s.band_names[:2] == ["sdss::g", "sdss::r"]
    assert np.isnan(s.true_flux).all()


def test_slicing_returns_series():
    s = make_series()
    for part in (s[1:4], s[[0, 2]], s[s.band == 2], s[3]):
        assert isinstance(part, StampSeries)
        assert part.object_id == "obj1"
    assert len(s[1:4]) == 3
    assert s[3].mjd.tolist() == [53603.0]
    g = s.select_band("g")
    assert (g.band == 2).all() and len(g) == 3


def test_unsorted_frames_rejected_and_from_frames_sorts():
    s = make_series()
    with pytest.raises(ConventionError, match=r"obj1.*not sorted"):
        make_series(mjd=s.mjd[::-1])
    shuffled = StampSeries.from_frames(
        s.frames[::-1],
        s.mjd[::-1],
        band=s.band[::-1],
        psf_fwhm=s.psf_fwhm,
        sky_sigma=s.sky_sigma,
        zeropoint=s.zeropoint,
        object_id="obj1",
    )
    assert np.array_equal(shuffled.frames, s.frames)
    assert np.array_equal(shuffled.band, s.band)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mjd": np.arange(5.0)}, "mjd has 5 values for 6 frames"),
        ({"frames": np.zeros((6, 8))}, "frames must be"),
        ({"band": np.zeros(6, dtype=int)}, "padding"),
        ({"mjd": np.array([1, 2, np.nan, 4, 5, 6.0])}, "non-finite"),
        ({"band": np.array(["sdss::q"] * 6)}, "unknown band"),
    ],
)
def test_bad_series(change, message):
    with pytest.raises(ConventionError, match=message):
        make_series(**change)


def test_tables_and_plot():
    from convention.lightcurves import lightcurve_of
    from convention.plotting import plot_series

    s = make_series()
    table = s.to_table()
    assert len(table) == 6 and table.meta["object_id"] == "obj1"
    lc = lightcurve_of(s)
    assert list(lc.colnames) == ["mjd", "band", "flux", "flux_err", "detected"]
    fig = plot_series(s)
    # 2 bands x (frames, difference) rows + light curve; each row the reference and 6
    # nights as 8x8 tiles 1 pixel apart, the reference's difference a grey tile
    assert len(fig.axes) == 2 * 2 + 1
    frames, differences = (np.asarray(ax.images[0].get_array()) for ax in fig.axes[:2])
    assert frames.shape == differences.shape == (8, 7 * 8 + 6, 3)
    assert np.all(differences[:, :8] == 0.85) and np.all(differences[:, 8] == 1.0)
    assert not np.all(frames[:, :8] == 0.85)
    # A source's own difference stamps are drawn as they are.
    s.channels = {"difference": np.zeros_like(s.frames)}
    own = np.asarray(plot_series(s).axes[1].images[0].get_array())
    assert np.ptp(own[:, 9:17]) == 0 and np.ptp(differences[:, 9:17]) > 0


def test_the_light_curve_is_of_difference_fluxes_with_limits():
    from matplotlib.collections import PathCollection

    from convention.plotting import plot_lightcurve
    from convention.psf import moffat_sampled

    m = 12
    frames = np.random.default_rng(1).normal(size=(m, 16, 16)).astype(np.float32)
    frames += 50 * moffat_sampled((16, 16), 1.4 / 0.396)[None]  # a constant host
    frames[::2][3:5] += 400 * moffat_sampled((16, 16), 1.4 / 0.396)  # g brightens twice
    s = make_series(m=m, size=16, frames=frames, mjd=53600.0 + np.arange(m) / 2)
    ax = plot_lightcurve(s)
    assert ax.get_ylabel() == "difference flux (PSF)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["g", "r"]
    detections = [c for c in ax.containers]  # error bars: g's two detections only
    assert len(detections) == 1 and len(detections[0].lines[0].get_xdata()) == 2
    # Open triangles (scatter collections): the host is subtracted away, the rest are limits.
    limits = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(limits) == 2 and sum(len(c.get_offsets()) for c in limits) == m - 2
