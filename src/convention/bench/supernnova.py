"""SuperNNova (Moller & de Boissiere 2020), the real package, run through its own command
line on the same splits as every other row.

SuperNNova pins old numpy and astropy, so it lives in its own virtual environment (made
on first use) and talks to us through files: the light curves exported as SNANA CSV
(forced PSF photometry on the stamps less each band's reference stamp), its prediction
pickle converted to CSV by its own Python. Known pitfalls of version 3.0.51, handled here:

- ``make_data`` needs ``--debug`` on two-core machines (its process pool otherwise gets
  no workers);
- its flux normalisation takes its statistics from the unclipped minimum flux, so large
  negative fluxes flatten every input: FLUXCAL is clipped at -2000 (the value it clips its
  inputs at anyway) in the exported files;
- class indices follow the first appearance of each class in ``--sntypes`` with the
  ``--target_sntype`` (``Ia``) moved to index 0: they are mapped back explicitly;
- its training set is balanced by dropping objects down to the rarest class's count
  (its design, kept: only that many objects per class are trained on).
- train and test come from separate dumps, the test one made with ``--data_testing``, and
  the test objects are scored with the normalisation saved beside the trained model, so
  they never enter its training or its normalisation. The training dump keeps
  SuperNNova's default 80/10/10 split of our training objects (its 10% validation picks
  its best epoch; ``--data_training`` would leave 0.5%, none at all on small data sets,
  where its training then divides by zero).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from convention.data.lightcurve import LabelledLightCurve
from convention.data.store import Store
from convention.errors import ConventionError
from convention.io.snana import DEFAULT_CLIP_FLUXCAL, sntype_codes, write_snana
from convention.lightcurves import FORCED_PSF, lightcurve_of

VERSION = "3.0.51"
TARGET_SNTYPE = "Ia"  # SuperNNova's default binary target
VENV_VARIABLE = "CONVENTION_SUPERNNOVA_VENV"
INSTALL_TIMEOUT_S = 1800
_PRED_TO_CSV = """
import glob, sys
import pandas as pd
paths = sorted(glob.glob(sys.argv[1] + "/**/PRED_*.pickle", recursive=True))
paths = [p for p in paths if "_aggregated" not in p and "swa" not in p]
df = pd.read_pickle(paths[0])
cols = [c for c in df.columns if c.startswith("all_class")]
df = df.groupby("SNID")[cols].mean().reset_index()
df.to_csv(sys.argv[2], index=False)
"""


def venv_path(work: Path) -> Path:
    """Where SuperNNova's environment lives: ``$CONVENTION_SUPERNNOVA_VENV`` or
    ``WORK/supernnova-venv``."""
    return Path(os.environ.get(VENV_VARIABLE, work / "supernnova-venv"))


def ensure_environment(venv: Path) -> Path:
    """SuperNNova's ``snn`` command, installing it (CPU torch) into ``venv`` if needed.

    Raises:
        ConventionError: the environment could not be made.
    """
    snn = venv / "bin" / "snn"
    if snn.is_file():
        return snn
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Rows of a bench run at once (--jobs): one installs, the others wait for it and
    # find the command made. The kernel drops the lock of a killed installer; the next
    # one installs over what it left.
    with (venv.parent / f".{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not snn.is_file():
            _install(venv)
    return snn


def _install(venv: Path) -> None:
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "torch==2.13.0", f"supernnova=={VERSION}"],
    ]
    for step in steps:
        try:
            done = subprocess.run(
                step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ConventionError(f"SuperNNova environment failed to install ({err})") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            cause = lines[-1] if lines else f"exit code {done.returncode}"
            raise ConventionError(f"SuperNNova environment failed to install: {cause}")


def class_order(sntypes: dict[str, str], target: str = TARGET_SNTYPE) -> list[str]:
    """SuperNNova's class of each output index: classes in order of first appearance in
    ``sntypes``, the target class moved to index 0 when present."""
    order: list[str] = []
    for name in sntypes.values():
        if name not in order:
            order.append(name)
    if target in order:
        order.remove(target)
        order.insert(0, target)
    return order


def _lightcurves(store: Store, rows: np.ndarray) -> list[LabelledLightCurve]:
    objects = []
    for r in rows:
        series = store[int(r)]
        objects.append(
            LabelledLightCurve(
                object_id=series.object_id,
                lightcurve=lightcurve_of(series, FORCED_PSF),
                label=series.label,
                redshift=float("nan"),  # the image models see no redshift either
                ra=series.ra,
                dec=series.dec,
            )
        )
    return objects


def _snn(snn: Path, args: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ snn {' '.join(args)}\n")
        out.flush()
        done = subprocess.run([str(snn), *args], stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        raise ConventionError(
            f"snn {args[0]} failed (exit {done.returncode}): {lines[-1] if lines else ''}",
            path=log,
        )


def run_supernnova(
    store: Store,
    split: dict[str, np.ndarray],
    classes: list[str],
    work: Path,
    variant: str,
    seed: int,
    epochs: int,
    venv: Path,
) -> tuple[np.ndarray, float, float]:
    """Train SuperNNova on the train and validation objects, score the test objects.

    Args:
        store: the data.
        split: ``train``, ``val``, ``test`` object positions.
        classes: our class order.
        work: a fresh folder for the exports, dumps and logs.
        variant: ``vanilla`` (the RNN) or ``bayesian`` (the Bayesian RNN).
        seed: SuperNNova's seed.
        epochs: its ``--nb_epoch``.
        venv: its environment.

    Returns:
        (n_test, C) probabilities in ``classes`` order and test-object order, training
        seconds (export included), inference seconds (export included).

    Raises:
        ConventionError: a failed install or command; predictions missing objects.
    """
    snn = ensure_environment(venv)
    sntypes = sntype_codes(classes)
    order = class_order(sntypes)
    log = work / "supernnova.log"
    common = ["--sntypes", json.dumps(sntypes), "--seed", str(seed)]
    filters = ["--list_filters", *sorted({b.split("::")[-1] for b in store.bands})]
    start = time.perf_counter()
    fit_rows = np.concatenate([split["train"], split["val"]])
    write_snana(
        _lightcurves(store, fit_rows),
        classes,
        work / "raw_train",
        clip_fluxcal=DEFAULT_CLIP_FLUXCAL,
    )
    train_dump = work / "dump_train"
    _snn(
        snn,
        [
            "make_data",
            "--dump_dir",
            str(train_dump),
            "--raw_dir",
            str(work / "raw_train"),
            "--debug",
            *filters,
            *common,
        ],
        log,
    )
    _snn(
        snn,
        [
            "train_rnn",
            "--dump_dir",
            str(train_dump),
            "--model",
            variant,
            "--nb_classes",
            str(len(classes)),
            "--nb_epoch",
            str(epochs),
            *common,
        ],
        log,
    )
    train_seconds = time.perf_counter() - start
    models = sorted(train_dump.glob("models/*/*.pt"))
    if not models:
        raise ConventionError("SuperNNova wrote no model file", path=train_dump)
    start = time.perf_counter()
    test_ids = [store.object_ids[int(r)] for r in split["test"]]
    write_snana(
        _lightcurves(store, split["test"]),
        classes,
        work / "raw_test",
        clip_fluxcal=DEFAULT_CLIP_FLUXCAL,
    )
    test_dump = work / "dump_test"
    _snn(
        snn,
        [
            "make_data",
            "--dump_dir",
            str(test_dump),
            "--raw_dir",
            str(work / "raw_test"),
            "--data_testing",
            "--debug",
            *filters,
            *common,
        ],
        log,
    )
    _snn(
        snn,
        ["validate_rnn", "--dump_dir", str(test_dump), "--model_files", str(models[0]), *common],
        log,
    )
    table = work / "predictions.csv"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _PRED_TO_CSV, str(test_dump), str(table)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ConventionError(
            f"cannot read SuperNNova's predictions: {done.stderr.strip().splitlines()[-1:]}",
            path=test_dump,
        )
    infer_seconds = time.perf_counter() - start
    return _reorder(table, test_ids, order, classes), train_seconds, infer_seconds


def _reorder(table: Path, ids: list[str], order: list[str], classes: list[str]) -> np.ndarray:
    from astropy.table import Table

    preds = Table.read(table, format="ascii.csv")
    rows = {str(s): k for k, s in enumerate(preds["SNID"])}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise ConventionError(
            f"SuperNNova scored no prediction for {len(missing)} test objects", path=table
        )
    columns = sorted(
        (c for c in preds.colnames if "_class" in c), key=lambda c: int(c.split("_class")[-1])
    )
    proba = np.zeros((len(ids), len(classes)))
    for index, column in enumerate(columns):
        proba[:, classes.index(order[index])] = np.asarray(preds[column])[[rows[i] for i in ids]]
    return proba
