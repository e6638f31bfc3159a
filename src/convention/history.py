"""Each object's earlier alerts, kept by an alert stream so that an alert is classified
with the object's past: a packet carries one detection's cutouts and 30 days of
photometry, never the earlier cutouts an image-sequence model reads.

One rule for both engines of ``classify-alerts``: :func:`advance` takes an object's kept
epochs and the alerts of a micro-batch and gives each alert the sequence it is classified
with (itself and the kept epochs no later than it, within the bounds) and the epochs kept
after. The local engine keeps the epochs in SQLite (:class:`HistoryStore`, one file
under ``--out``); Spark keeps the same packed epochs in its own state store
(``applyInPandasWithState``, in the query's checkpoint).

Bounds (:class:`HistoryBounds`): an object keeps its ``epochs`` most recent alerts (by
default the frames the model reads at most), none older than ``days`` before its newest.
A re-sent alert (the same candidate) is kept once; an alert arriving late is placed in
time order and sees only what came before it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convention.data.reference import Reference
from convention.errors import ConventionError
from convention.io.formats.alerts import Alert

FORMAT = "convention-history/1"
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class HistoryBounds:
    """How much of an object's past a stream keeps.

    Attributes:
        epochs: most alerts of one object kept (its most recent), the alert itself
            included in the sequence it is classified with.
        days: alerts older than this many days before the object's newest are dropped.
    """

    epochs: int = 99
    days: float = 365.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConventionError(f"--history-epochs must be at least 1, got {self.epochs}")
        if not 0 < self.days <= 36500:  # NaN is not
            raise ConventionError(
                f"--history-days must be a positive number of days (at most 36500), got {self.days}"
            )


def epoch_id(alert: Alert) -> str:
    """What makes an alert one epoch of its object: its candidate id, or, where the
    packet has none, its time and band."""
    return alert.candidate_id or f"mjd={alert.mjd!r}:{alert.band}"


def _order(alert: Alert) -> tuple[float, str]:
    return alert.mjd, epoch_id(alert)


def advance(
    kept: Sequence[Alert], new: Sequence[Alert], bounds: HistoryBounds
) -> tuple[list[list[Alert]], list[Alert]]:
    """One object's micro-batch: each new alert's sequence, and what the object keeps.

    Args:
        kept: the object's epochs kept so far (any order).
        new: its alerts of this micro-batch (any order; re-sent ones included).
        bounds: what is kept.

    Returns:
        For each of ``new``, in its order: the kept and new epochs of other candidates no
        later than it and within ``bounds.days`` before it, the most recent
        ``bounds.epochs - 1`` of them in time order, then the alert itself. And the epochs
        kept afterwards (each candidate once, the earliest copy, in time order, pruned to
        the bounds).
    """
    epochs: dict[str, Alert] = {}
    for alert in sorted(kept, key=_order):
        epochs.setdefault(epoch_id(alert), alert)
    for alert in new:
        epochs.setdefault(epoch_id(alert), alert)
    timeline = sorted(epochs.values(), key=_order)
    sequences = []
    for alert in new:
        me = epoch_id(alert)
        before = [
            e
            for e in timeline
            if e.mjd <= alert.mjd and e.mjd >= alert.mjd - bounds.days and epoch_id(e) != me
        ]
        sequences.append([*before, alert][-bounds.epochs :])
    newest = timeline[-1].mjd if timeline else math.nan
    recent = [e for e in timeline if e.mjd >= newest - bounds.days]
    return sequences, recent[-bounds.epochs :]


def pack_alert(alert: Alert) -> bytes:
    """An alert as bytes (JSON header, then its float32 images): what a history keeps.
    No pickle: a history file is read back without running anything in it."""
    reference = alert.reference
    header = {
        "object_id": alert.object_id,
        "candidate_id": alert.candidate_id,
        "mjd": alert.mjd,
        "band": alert.band,
        "meta": {k: float(v) for k, v in alert.meta.items()},
        "lightcurve": [
            [float(r[0]), r[1], float(r[2]), float(r[3]), bool(r[4])] for r in alert.lightcurve
        ],
        "path": str(alert.path),
        "schema": alert.schema,
        "dropped_rows": alert.dropped_rows,
        "images": {name: list(image.shape) for name, image in alert.images.items()},
        "reference": None
        if reference is None
        else {
            "shape": list(reference.stamp.shape),
            "kind": reference.kind,
            "n_frames": reference.n_frames,
            "mjd_start": reference.mjd_start,
            "mjd_end": reference.mjd_end,
            "psf_fwhm": reference.psf_fwhm,
            "sky_sigma": reference.sky_sigma,
        },
        "reference_note": alert.reference_note,
        "missing": list(alert.missing),
    }
    text = json.dumps(header, allow_nan=True).encode()
    arrays = [np.ascontiguousarray(image, dtype="<f4") for image in alert.images.values()]
    if reference is not None:
        arrays.append(np.ascontiguousarray(reference.stamp, dtype="<f4"))
    return b"".join([_LENGTH.pack(len(text)), text, *(a.tobytes() for a in arrays)])


def unpack_alert(data: bytes) -> Alert:
    """The alert :func:`pack_alert` wrote.

    Raises:
        ValueError: bytes that are not a packed alert (the caller names the file).
    """
    if len(data) < _LENGTH.size:
        raise ValueError("a packed alert shorter than its header")
    (size,) = _LENGTH.unpack_from(data)
    header = json.loads(data[_LENGTH.size : _LENGTH.size + size])
    offset = _LENGTH.size + size

    def take(shape: list[int]) -> np.ndarray:
        nonlocal offset
        count = int(np.prod(shape))
        if offset + 4 * count > len(data):
            raise ValueError("a packed alert shorter than its images")
        image = np.frombuffer(data, "<f4", count, offset).reshape(shape).astype(np.float32)
        offset += 4 * count
        return image

    images = {name: take(shape) for name, shape in header["images"].items()}
    ref = header["reference"]
    reference = None
    if ref is not None:
        stamp = take(ref.pop("shape"))
        reference = Reference(stamp, **ref)
    if offset != len(data):
        raise ValueError("a packed alert longer than its header says")
    return Alert(
        header["object_id"],
        header["candidate_id"],
        header["mjd"],
        header["band"],
        images,
        header["meta"],
        [tuple(row) for row in header["lightcurve"]],
        Path(header["path"]),
        header["schema"],
        header["dropped_rows"],
        reference,
        header["reference_note"],
        tuple(header.get("missing", ())),  # histories written before it: none missing
    )


def pack_alerts(alerts: Sequence[Alert]) -> bytes:
    """Several alerts as one bytes value (each packed, length first)."""
    return join_packed([pack_alert(alert) for alert in alerts])


def join_packed(packed: Sequence[bytes]) -> bytes:
    """Packed alerts as one bytes value, as :func:`pack_alerts` writes it."""
    return b"".join(part for one in packed for part in (_LENGTH.pack(len(one)), one))


def split_packed(data: bytes) -> list[bytes]:
    """The packed alerts of :func:`join_packed`'s bytes.

    Raises:
        ValueError: bytes that are not packed alerts.
    """
    parts, offset = [], 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise ValueError("packed alerts shorter than their lengths say")
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + size > len(data):
            raise ValueError("packed alerts shorter than their lengths say")
        parts.append(bytes(data[offset : offset + size]))
        offset += size
    return parts


def unpack_alerts(data: bytes) -> list[Alert]:
    """The alerts :func:`pack_alerts` wrote.

    Raises:
        ValueError: bytes that are not packed alerts.
    """
    return [unpack_alert(part) for part in split_packed(data)]


class HistoryStore:
    """The local engine's history: one SQLite file (Python's own embedded database:
    transactional, one file, nothing to run beside the stream), an epoch a row.

    Restart-safe with the stream's log: the epochs a micro-batch adds are marked with its
    number, and the epochs it prunes are only marked, so running a batch again (after a
    kill before its commit) first undoes what its earlier attempt did. Epochs pruned by
    committed batches are deleted when the next batch starts.

    Args:
        path: the file (created if missing).
        owner: what the history belongs to (the model's version and the cutouts it
            keeps); a file of another owner is refused.
        bounds: what is kept.
        reset: delete an existing file first.

    Raises:
        ConventionError: a file that is no history of this format, damaged, or of
            another owner.
    """

    def __init__(
        self, path: Path, owner: dict[str, str], bounds: HistoryBounds, reset: bool = False
    ):
        self.path, self.owner, self.bounds = Path(path), dict(owner), bounds
        if reset:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        fresh = not self.path.exists()
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            if fresh:
                self._create()
            else:
                self._check()
        except sqlite3.DatabaseError as err:
            raise ConventionError(
                f"history store is damaged ({err}): --reset-history starts it afresh",
                path=self.path,
            ) from None

    def _create(self) -> None:
        self.db.executescript(
            """
            BEGIN;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE epochs (
                object_id TEXT NOT NULL, epoch TEXT NOT NULL, mjd REAL NOT NULL,
                packed BLOB NOT NULL, batch INTEGER NOT NULL, pruned_by INTEGER,
                PRIMARY KEY (object_id, epoch));
            CREATE INDEX epochs_batch ON epochs (batch);
            CREATE INDEX epochs_pruned ON epochs (pruned_by);
            COMMIT;
            """
        )
        rows = [("format", FORMAT), *sorted(self.owner.items())]
        with self.db:
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", rows)

    def _check(self) -> None:
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        if meta.get("format") != FORMAT:
            raise ConventionError(
                f"not a history store of this version of convention ({meta.get('format')}): "
                "--reset-history starts it afresh",
                path=self.path,
            )
        for key, value in self.owner.items():
            if meta.get(key) != value:
                raise ConventionError(
                    f"history store of another {key} ({meta.get(key)}, this stream's is "
                    f"{value}): --reset-history starts it afresh, or classify into another --out",
                    path=self.path,
                )
        (check,) = self.db.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise ConventionError(
                f"history store is damaged ({check}): --reset-history starts it afresh",
                path=self.path,
            )

    def advance(self, batch_id: int, alerts: Sequence[Alert]) -> list[list[Alert]]:
        """Micro-batch ``batch_id``'s alerts into the history (undoing an earlier attempt
        of the same batch first), and each alert's sequence, in their order
        (:func:`advance`).

        Raises:
            ConventionError: a kept epoch that cannot be read back.
        """
        by_object: dict[str, list[int]] = {}
        for row, alert in enumerate(alerts):
            by_object.setdefault(alert.object_id, []).append(row)
        sequences: list[list[Alert]] = [[] for _ in alerts]
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM epochs WHERE batch = ?", (batch_id,))
            self.db.execute("UPDATE epochs SET pruned_by = NULL WHERE pruned_by = ?", (batch_id,))
            self.db.execute("DELETE FROM epochs WHERE pruned_by IS NOT NULL")
            for object_id, rows in by_object.items():
                kept = self._kept(object_id)
                new = [alerts[row] for row in rows]
                object_sequences, after = advance(kept, new, self.bounds)
                for row, sequence in zip(rows, object_sequences, strict=True):
                    sequences[row] = sequence
                stay = {epoch_id(e) for e in after}
                self.db.executemany(
                    "INSERT OR IGNORE INTO epochs VALUES (?, ?, ?, ?, ?, NULL)",
                    [
                        (object_id, epoch_id(a), a.mjd, pack_alert(a), batch_id)
                        for a in new
                        if epoch_id(a) in stay
                    ],
                )
                self.db.executemany(
                    "UPDATE epochs SET pruned_by = ? WHERE object_id = ? AND epoch = ?",
                    [(batch_id, object_id, epoch_id(e)) for e in kept if epoch_id(e) not in stay],
                )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return sequences

    def _kept(self, object_id: str) -> list[Alert]:
        rows = self.db.execute(
            "SELECT packed FROM epochs WHERE object_id = ? AND pruned_by IS NULL "
            "ORDER BY mjd, epoch",
            (object_id,),
        )
        kept = []
        for (packed,) in rows:
            try:
                kept.append(unpack_alert(packed))
            except (ValueError, KeyError, TypeError) as err:
                raise ConventionError(
                    f"history store is damaged (an epoch unreadable: {err}): --reset-history "
                    "starts it afresh",
                    path=self.path,
                    obj=object_id,
                ) from None
        return kept

    def size(self) -> dict[str, int]:
        """What the store holds: ``objects``, ``epochs`` and the file's ``bytes``."""
        objects, epochs = self.db.execute(
            "SELECT COUNT(DISTINCT object_id), COUNT(*) FROM epochs WHERE pruned_by IS NULL"
        ).fetchone()
        return {"objects": objects, "epochs": epochs, "bytes": self.path.stat().st_size}

    def close(self) -> None:
        """Close the file."""
        self.db.close()
