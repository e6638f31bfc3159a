"""``lc-features-gbm``: light-curve features and gradient-boosted trees with balanced class
weights, the practitioners' classifier (ALeRCE's light-curve classifier, Avocado)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from convention.bands import get_band
from convention.data.cutoff import Cutoff, cut_to_nights
from convention.data.store import Store
from convention.features import lightcurve_features, scene_features
from convention.inputs.luminosity import Luminosity
from convention.inputs.metadata import Metadata
from convention.lightcurves import FORCED_PSF, SUPPLIED_ELSE_FORCED, lightcurve_of

# The light curve of each photometry choice (``convention.lightcurves``).
PHOTOMETRY = {"psf": FORCED_PSF, "source": SUPPLIED_ELSE_FORCED}


def _object_features(
    args: tuple[Store, int, str, bool, bool, bool, float, Cutoff | None],
) -> np.ndarray:
    store, row, photometry, scene, metadata, luminosity, draw, cutoff = args
    series = cut_to_nights(store[row], draw)
    if cutoff is not None:
        series = cutoff.apply(series)
    lc = lightcurve_of(series, PHOTOMETRY[photometry])
    parts = [lightcurve_features(lc, store.bands)]
    if scene:
        band_ids = [get_band(b, store.survey).id for b in store.bands]
        parts.append(scene_features(series, band_ids))
    if metadata:
        parts.append(Metadata.values(series.metadata, series.ra, series.dec))
    if luminosity:
        parts.append(Luminosity.values(lc, store.bands, series.metadata))
    return np.concatenate(parts)


def feature_matrix(
    store: Store,
    rows: Sequence[int],
    photometry: str = "psf",
    workers: int = 1,
    scene: bool = False,
    draws: np.ndarray | None = None,
    cutoff: Cutoff | None = None,
    metadata: bool = False,
    luminosity: bool = False,
) -> np.ndarray:
    """(len(rows), n_features) features of the objects at ``rows``.

    Args:
        store: the data.
        rows: object positions.
        photometry: ``psf`` (forced PSF photometry on the stamps less each band's
            reference stamp) or ``source`` (the objects' own light curves where they have
            one): a key of ``PHOTOMETRY``.
        workers: processes (the result does not depend on it).
        scene: add each band's reference-stamp (host) features after the light curve's
            (``features.scene_features``): the hybrid of light curve and stamps.
        draws: per object of ``store``, the training-time cut of ``cut_to_nights`` (NaN:
            whole; None: every object whole).
        cutoff: the early-classification cutoff each object is seen at (None: all of it).
        metadata: add the object's catalogue metadata last, as the ``metadata`` input kind
            reads it (``Metadata.values``: NaN where not measured, which the trees take
            as missing).
        luminosity: add each band's peak absolute magnitude last, as the ``luminosity``
            input kind reads it (``Luminosity.values``).

    Raises:
        ConventionError: an object with no frame by ``cutoff``.
    """
    draws = np.full(len(store), np.nan) if draws is None else draws
    items = [
        (store, int(r), photometry, scene, metadata, luminosity, float(draws[r]), cutoff)
        for r in rows
    ]
    if workers <= 1:
        return np.array([_object_features(i) for i in items])
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers, threadpool_limits, (1,)) as pool:
        return np.array(pool.map(_object_features, items, chunksize=16))


def fit_feature_gbm(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    seed: int,
) -> HistGradientBoostingClassifier:
    """Gradient-boosted trees with balanced class weights, early-stopped on the validation
    split (never on the test split). A feature no training object has (a metadata field
    its source never gives) is fitted as a constant, which no tree splits on: scikit-learn
    cannot bin a column of missing values alone."""
    empty = np.isnan(x_train).all(axis=0)
    if empty.any():
        x_train, x_val = x_train.copy(), x_val.copy()
        x_train[:, empty] = x_val[:, empty] = 0.0
    model = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=1000,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        class_weight="balanced",
        early_stopping=True,
        n_iter_no_change=30,
        random_state=seed,
    )
    return model.fit(x_train, y_train, X_val=x_val, y_val=y_val)
