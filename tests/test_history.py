"""Each object's earlier alerts kept by the stream: the rule both engines follow, the
packed epochs, and the local engine's SQLite history across re-runs, damage and owners."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from convention.data.reference import Reference
from convention.errors import ConventionError
from convention.history import (
    HistoryBounds,
    HistoryStore,
    advance,
    join_packed,
    pack_alert,
    pack_alerts,
    unpack_alert,
    unpack_alerts,
)
from convention.io.formats.alerts import Alert

OWNER = {"model_version": "run-abc", "cutouts": "science"}


def _alert(candidate: str, mjd: float, obj: str = "ZTF1", reference: bool = False) -> Alert:
    stamp = np.arange(16, dtype=np.float32).reshape(4, 4) + mjd
    return Alert(
        obj,
        candidate,
        mjd,
        "r",
        {"science": stamp},
        {"ra": 10.0, "dec": -5.0, "psf_fwhm": np.nan, "sky_sigma": 1.5, "zeropoint": 26.0},
        [(mjd, "r", 3.0, 0.5, True), (mjd - 2, "g", 0.0, 0.2, False)],
        Path(f"{candidate}.avro"),
        "ztf",
        reference=Reference(stamp * 0.5, n_frames=20, mjd_start=58000.0) if reference else None,
    )


def _ids(sequence: list[Alert]) -> list[str]:
    return [a.candidate_id for a in sequence]


def test_each_alert_sees_only_its_past_in_time_order():
    kept = [_alert("c3", 103.0), _alert("c1", 101.0)]
    late, resent, new = _alert("c2", 102.0), _alert("c1", 101.0), _alert("c4", 104.0)
    sequences, after = advance(kept, [new, late, resent], HistoryBounds(epochs=10))
    assert [_ids(s) for s in sequences] == [
        ["c1", "c2", "c3", "c4"],
        ["c1", "c2"],  # arriving late, it sees only what came before it
        ["c1"],  # re-sent: itself, not twice
    ]
    assert _ids(after) == ["c1", "c2", "c3", "c4"]


def test_bounds_keep_the_most_recent_epochs_within_the_age_limit():
    kept = [_alert(f"c{k}", 100.0 + k) for k in range(6)]
    sequences, after = advance(kept, [_alert("c9", 109.0)], HistoryBounds(epochs=3))
    assert _ids(sequences[0]) == ["c4", "c5", "c9"]
    assert _ids(after) == ["c4", "c5", "c9"]
    sequences, after = advance(kept, [_alert("c9", 109.0)], HistoryBounds(epochs=50, days=6.5))
    assert _ids(sequences[0]) == ["c3", "c4", "c5", "c9"]
    assert _ids(after) == ["c3", "c4", "c5", "c9"]


def test_a_history_fuller_than_half_its_bound_gives_every_epoch():
    """An alert with more earlier epochs than half the bound, but fewer than the bound,
    sees them all (a slice from a negative start once cut such sequences short)."""
    alerts = [_alert(f"c{k}", 100.0 + k) for k in range(9)]
    sequences, _ = advance([], alerts, HistoryBounds(epochs=6))
    assert [len(s) for s in sequences] == [1, 2, 3, 4, 5, 6, 6, 6, 6]
    assert _ids(sequences[4]) == ["c0", "c1", "c2", "c3", "c4"]


@pytest.mark.parametrize("epochs, days", [(0, 365.0), (5, 0.0), (5, float("nan"))])
def test_bad_bounds_are_one_line(epochs, days):
    with pytest.raises(ConventionError, match="--history-"):
        HistoryBounds(epochs, days)


def test_a_packed_alert_reads_back_whole():
    alert = _alert("c1", 58100.5, reference=True)
    back = unpack_alert(pack_alert(alert))
    assert np.array_equal(back.images["science"], alert.images["science"])
    assert np.array_equal(back.reference.stamp, alert.reference.stamp)
    assert back.reference.n_frames == 20 and back.reference.mjd_start == 58000.0
    assert np.isnan(back.meta["psf_fwhm"]) and back.meta["zeropoint"] == 26.0
    assert back.lightcurve == alert.lightcurve and back.path == alert.path
    assert back.missing == () and unpack_alert(
        pack_alert(replace(alert, missing=("template",)))
    ).missing == ("template",)
    assert _ids(unpack_alerts(pack_alerts([alert, _alert("c2", 3.0)]))) == ["c1", "c2"]
    with pytest.raises(ValueError, match="shorter than its images"):
        unpack_alert(pack_alert(alert)[:-8])


def test_a_batch_run_again_after_a_kill_gives_what_it_gave(tmp_path):
    bounds = HistoryBounds(epochs=2)
    store = HistoryStore(tmp_path / "h.sqlite", OWNER, bounds)
    store.advance(0, [_alert("c1", 101.0), _alert("c2", 102.0), _alert("x1", 101.0, obj="ZTF2")])
    batch = [_alert("c3", 103.0), _alert("x2", 104.0, obj="ZTF2")]
    first = store.advance(1, batch)  # its tables never committed: the stream runs it again
    store.close()
    again = HistoryStore(tmp_path / "h.sqlite", OWNER, bounds)
    assert [_ids(s) for s in again.advance(1, batch)] == [_ids(s) for s in first]
    assert [_ids(s) for s in first] == [["c2", "c3"], ["x1", "x2"]]
    assert again.size()["epochs"] == 4  # c2, c3, x1, x2: c1 pruned once, none twice
    # the next batch purges what committed batches pruned
    assert _ids(again.advance(2, [_alert("c0", 100.0)])[0]) == ["c0"]
    rows = again.db.execute("SELECT epoch FROM epochs WHERE object_id = 'ZTF1' ORDER BY mjd")
    assert [r[0] for r in rows] == ["c2", "c3"]


def test_a_history_of_another_model_or_damaged_is_one_line(tmp_path):
    path = tmp_path / "h.sqlite"
    HistoryStore(path, OWNER, HistoryBounds()).advance(0, [_alert("c1", 101.0)])
    with pytest.raises(ConventionError, match=r"another model_version.*--reset-history") as err:
        HistoryStore(path, {**OWNER, "model_version": "run-other"}, HistoryBounds())
    assert str(path) in str(err.value)
    fresh = HistoryStore(path, {**OWNER, "model_version": "run-other"}, HistoryBounds(), True)
    assert fresh.size()["epochs"] == 0
    fresh.close()
    not_sqlite = tmp_path / "text.sqlite"
    not_sqlite.write_text("not a database " * 100)
    with pytest.raises(ConventionError, match="history store is damaged"):
        HistoryStore(not_sqlite, OWNER, HistoryBounds())
    assert not_sqlite.read_text().startswith("not a database")  # nothing overwritten
    store = HistoryStore(tmp_path / "bad.sqlite", OWNER, HistoryBounds())
    store.advance(0, [_alert("c1", 101.0)])
    store.close()
    with sqlite3.connect(tmp_path / "bad.sqlite") as db:
        db.execute("UPDATE epochs SET packed = x'00010203'")
    store = HistoryStore(tmp_path / "bad.sqlite", OWNER, HistoryBounds())
    with pytest.raises(ConventionError, match="object ZTF1: history store is damaged"):
        store.advance(1, [_alert("c2", 102.0)])


class _State:
    """Spark's GroupState as the state function uses it."""

    exists, get = False, None

    def update(self, value: tuple) -> None:
        self.exists, self.get = True, value


def test_spark_stages_give_an_object_one_row_and_carry_its_state():
    from convention.spark import history_state_function, one_row_per_object

    def row(key, alert=None, cause=None):
        packed = None if alert is None else join_packed([pack_alert(alert)])
        return {"key": key, "file": "f.avro", "cause": cause, "alerts": packed}

    frames = [
        pd.DataFrame([row("o:ZTF1", _alert("c2", 102.0)), row("rejected:0:x", cause="bad")]),
        pd.DataFrame([row("o:ZTF1", _alert("c1", 101.0))]),  # another Arrow batch
    ]
    (joined,) = one_row_per_object(iter(frames))
    assert sorted(joined["key"]) == ["o:ZTF1", "rejected:0:x"]  # Spark 3.5 needs one row
    step, state = history_state_function(HistoryBounds(epochs=3)), _State()
    objects = joined[joined["key"] == "o:ZTF1"]
    (first,) = step(("o:ZTF1",), iter([objects]), state)
    assert sorted(_ids(unpack_alerts(s)) for s in first["sequence"]) == [["c1"], ["c1", "c2"]]
    later = pd.DataFrame([row("o:ZTF1", _alert("c3", 103.0))])
    (second,) = step(("o:ZTF1",), iter([later]), state)
    assert [_ids(unpack_alerts(s)) for s in second["sequence"]] == [["c1", "c2", "c3"]]
    (passed,) = step(("rejected:0:x",), iter([joined[joined["cause"].notna()]]), _State())
    assert passed["cause"].tolist() == ["bad"] and passed["sequence"].isna().all()
