"""Fuzzing the alert stream (issue 30): landing folders of generated hostile names and
entries on both engines, and numeric extremes over every numeric field of both alert
schemas. ``CONVENTION_FUZZ_SCALE=10`` multiplies the cases (see benchmarks/fuzz.sh)."""

from __future__ import annotations

import copy
import io
import os
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convention.alert_folder import AlertFolderStream, read_table
from convention.alert_stream import AlertClassifier
from convention.errors import ConventionError
from convention.io.formats.alerts import (
    RUBIN,
    ZTF,
    alert_series,
    display_name,
    read_alert_bytes,
)
from tests.test_fuzz_contracts import fuzz
from tests.test_io_alerts import RUBIN_SCHEMA, rubin_record

# --- landing folders --------------------------------------------------------------------

# Every printable character but the separator, the glob characters among them, a few
# beyond ASCII, DEL, and a byte that is not UTF-8 (as Python names it).
NAME_CHARACTERS = [c for c in string.printable if c != "/"] + ["é", "∂", "😀", "\x7f", "\udcff"]
KINDS = ["valid", "valid", "malformed", "folder", "fifo", "link_in", "link_out", "dangling"]
KINDS += ["loop", "link_folder"]
CAUSES = {
    "folder": "a folder, not an alert file",
    "link_folder": "a folder, not an alert file",
    "fifo": "a FIFO, not an alert file",
    "link_out": "a link leading out of the landing folder",
    "dangling": "a link to nothing",
    "loop": "unreadable link",
}


def _names(min_size: int = 0):
    return st.text(alphabet=NAME_CHARACTERS, min_size=min_size, max_size=24)


@st.composite
def landing_folders(draw) -> tuple[str, list[tuple[str, str]]]:
    """A landing folder's name and its entries ``(name, kind)``: names of any printable
    character, hidden or not, most ending in ``.avro``."""
    folder = draw(_names(1).filter(lambda n: n not in (".", "..")))
    entries = {}
    for _ in range(draw(st.integers(1, 8))):
        stem = draw(_names())
        prefix = draw(st.sampled_from(["", "", ".", "_"]))
        suffix = draw(st.sampled_from([".avro", ".avro", ".avro", ".avro.part", ""]))
        name = f"{prefix}{stem}{suffix}"
        if name not in ("", ".", "..", "target", "sub"):
            entries[name] = draw(st.sampled_from(KINDS))
    return folder, sorted(entries.items())


@dataclass(frozen=True)
class Expected:
    """What a landing folder must give: the names classified (one alert each) and the
    names rejected with the cause each must hold."""

    classified: list[str]
    rejected: dict[str, str]


def make_landing(root: Path, folder: str, entries, alerts: Path) -> tuple[Path, Expected]:
    """Create the landing folder ``root/folder`` and its entries; what it must give."""
    landing = root / folder
    landing.mkdir()
    valid = sorted((alerts / "valid").glob("*.avro"))
    malformed = sorted((alerts / "malformed").iterdir())
    shutil.copy(valid[0], landing / "target")  # a link's target, not named .avro
    (landing / "sub").mkdir()
    secret = root / "secret.avro"
    secret.write_bytes(valid[1].read_bytes())
    classified, rejected = [], {}
    for k, (name, kind) in enumerate(entries):
        path = landing / name
        if kind == "valid":
            shutil.copy(valid[k % len(valid)], path)
        elif kind == "malformed":
            shutil.copy(malformed[k % len(malformed)], path)
        elif kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "link_in":
            path.symlink_to("target")
        elif kind == "link_out":
            path.symlink_to(secret)
        elif kind == "dangling":
            path.symlink_to(landing / "gone")
        elif kind == "loop":
            path.symlink_to(name)
        else:
            path.symlink_to("sub")
        if not name.endswith(".avro"):
            continue
        if kind in ("valid", "link_in"):
            classified.append(display_name(name))
        else:
            rejected[display_name(name)] = CAUSES.get(kind, "")
    return landing, Expected(sorted(classified), rejected)


def _rows(out: Path) -> tuple:
    """An output's predictions and rejected rows, by file name, in order (no batch at all
    when nothing ends in .avro: no columns either)."""
    tables = []
    for name, columns in (
        ("predictions", ["file", "candidate_id"]),
        ("rejected", ["file", "cause"]),
    ):
        table = read_table(out, name)
        table = table if len(table.columns) else pd.DataFrame(columns=columns)
        tables.append(table.assign(name=[Path(f).name for f in table["file"]]).sort_values("name"))
    return tuple(tables)


def _check(out: Path, expected: Expected) -> tuple:
    predictions, rejected = _rows(out)
    assert predictions["name"].tolist() == expected.classified  # each exactly once
    assert sorted(rejected["name"]) == sorted(expected.rejected)
    for name, cause in zip(rejected["name"], rejected["cause"], strict=True):
        assert expected.rejected[name] in cause and "SECRET" not in cause
    return predictions, rejected


@pytest.fixture(scope="module")
def ztf_classifier(ztf_run) -> AlertClassifier:
    return AlertClassifier.load(ztf_run)


@settings(fuzz(4), deadline=180_000)  # a Spark session may start in an example
@given(landing=landing_folders(), spark=st.booleans())
def test_landing_folders_of_any_name_on_both_engines(
    landing, spark, ztf_alerts, ztf_run, ztf_classifier, tmp_path_factory
):
    """Each valid alert exactly once, each other entry one rejected row with its cause,
    nothing for a name not ending in .avro; run again, nothing twice; Spark (on half the
    examples) gives the same rows."""
    root = tmp_path_factory.mktemp("landing")
    folder, entries = landing
    inbox, expected = make_landing(root, folder, entries, ztf_alerts)
    local = root / f"local {folder}"
    AlertFolderStream(inbox, local, ztf_classifier, max_files=3).run()
    here = _check(local, expected)
    AlertFolderStream(inbox, local, ztf_classifier, max_files=3).run()
    _check(local, expected)
    if not spark:
        return
    from convention.spark import stream_alerts

    out = root / "spark out"  # Spark takes UTF-8 paths only; the landing folder any
    stream_alerts(inbox, out, ztf_run, max_files_per_trigger=3)
    there = _check(out, expected)
    assert there[0]["candidate_id"].tolist() == here[0]["candidate_id"].tolist()
    assert np.allclose(there[0].filter(like="p_"), here[0].filter(like="p_"), atol=1e-6)
    assert there[1]["cause"].tolist() == here[1]["cause"].tolist()


# --- numeric extremes -------------------------------------------------------------------

INT32, INT64 = 2**31 - 1, 2**63 - 1
EXTREMES = {
    "int": st.sampled_from([0, -1, INT32, -INT32 - 1]) | st.integers(-INT32 - 1, INT32),
    "long": st.sampled_from([0, -1, INT64, -INT64 - 1]) | st.integers(-INT64 - 1, INT64),
    "float": st.sampled_from([3.4028235e38, -3.4028235e38, 1e-45, -0.0, -1e4, -1000.0])
    | st.floats(width=32),
    "double": st.sampled_from([1.7976931348623157e308, -3e38, 5e-324, -1e4, -1006.94, 1e20])
    | st.floats(),
}


def numeric_fields(schema: dict) -> dict[str, tuple[str, bool]]:
    """A record schema's numeric fields: name -> (Avro type, whether it may be null)."""
    found = {}
    for f in schema["fields"]:
        types = f["type"] if isinstance(f["type"], list) else [f["type"]]
        numeric = [t for t in types if isinstance(t, str) and t in EXTREMES]
        if numeric:
            found[f["name"]] = (numeric[0], "null" in types)
    return found


def _record_schema(schema: dict, name: str) -> dict:
    """The record schema a field holds (``candidate``; an array's items)."""
    (field,) = [f for f in schema["fields"] if f["name"] == name]
    types = field["type"] if isinstance(field["type"], list) else [field["type"]]
    record = next(t for t in types if isinstance(t, dict))
    return record["items"] if record["type"] == "array" else record


@st.composite
def extreme_edits(draw, layout: dict) -> list[tuple[str, int, str, object]]:
    """Edits ``(where, history row, field, value)``: 1 to 4 numeric fields of the packet,
    its detection or a history row, set to extremes of their type (or null)."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(sorted(layout)))
        name = draw(st.sampled_from(sorted(layout[where])))
        kind, nullable = layout[where][name]
        value = draw(st.none() | EXTREMES[kind] if nullable else EXTREMES[kind])
        edits.append((where, draw(st.integers(0, 50)), name, value))
    return edits


def apply_edits(record: dict, edits, detection: str, previous: str) -> dict:
    record = copy.deepcopy(record)
    for where, row, name, value in edits:
        if where == "top":
            record[name] = value
        elif where == detection:
            record[detection][name] = value
        elif record[previous]:
            record[previous][row % len(record[previous])][name] = value
    return record


def final_values(edits, previous: str, rows: int) -> list[tuple[str, int, str, object]]:
    """The edits that stand: the last of those to one field of one row (history rows
    numbered as ``apply_edits`` finds them among ``rows``)."""
    last = {}
    for where, row, name, value in edits:
        last[where, row % max(rows, 1) if where == previous else 0, name] = value
    return [(where, row, name, value) for (where, row, name), value in last.items()]


@st.composite
def edited_packet(draw, schema: dict, record: dict, detection: str, previous: str, row: str):
    """``record`` with 1 to 4 numeric fields of the packet, its ``detection`` or a
    ``previous`` row (records of type ``row``) at extremes, and the edits that stand."""
    layout = {
        "top": numeric_fields(schema),
        detection: numeric_fields(_record_schema(schema, detection)),
        previous: numeric_fields(_record_schema(schema, row)),
    }
    edits = draw(extreme_edits(layout))
    packet = apply_edits(record, edits, detection, previous)
    return packet, final_values(edits, previous, len(record[previous]))


def out_of_range(schema, edits, where: str, names) -> list[tuple[str, int, str, object]]:
    """The edits to ``where`` that set one of ``names`` outside ``schema.ranges``."""
    found = []
    for edit in edits:
        place, _, name, value = edit
        low, high = schema.ranges.get(name, (-np.inf, np.inf))
        bad = value is not None and not (np.isfinite(value) and low <= value <= high)
        if place == where and name in names and bad:
            found.append(edit)
    return found


def _avro(schema: dict, record: dict) -> bytes:
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, [record])
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ztf_packets(ztf_alerts) -> list[tuple[dict, dict]]:
    """The valid real ZTF alerts that carry a history: (writer schema, record)."""
    packets = []
    for path in sorted((ztf_alerts / "valid").glob("*.avro")):
        with path.open("rb") as f:
            reader = fastavro.reader(f)
            packets += [(reader.writer_schema, r) for r in reader if r["prv_candidates"]]
    return packets


@fuzz(60)
@given(data=st.data())
def test_ztf_numeric_extremes_are_rejected_or_dropped_never_raised(
    ztf_packets, ztf_classifier, data
):
    """Every numeric field of a ZTF packet (its own, its detection's, a history row's) at
    the extremes of its type: the alert is classified with finite probabilities or
    rejected in one line; a detection out of its range is rejected, a history row out of
    range dropped and counted; nothing reaches the split-on-failure fallback."""
    schema, record = data.draw(st.sampled_from(ztf_packets))
    packet, edits = data.draw(
        edited_packet(schema, record, "candidate", "prv_candidates", "prv_candidates")
    )
    result = ztf_classifier.classify([("x.avro", _avro(schema, packet))])
    causes = result.rejected["cause"].tolist()
    assert len(result.predictions) + len(causes) == 1
    assert not any("could not be classified" in c for c in causes), causes
    used = {ZTF.time, ZTF.mag, ZTF.mag_err, ZTF.ra, ZTF.dec, ZTF.zeropoint, ZTF.fwhm_pixels}
    used |= {ZTF.x, ZTF.y}
    if out_of_range(ZTF, edits, "candidate", used):
        assert causes and "\n" not in causes[0]
        return
    if causes:
        assert "\n" not in causes[0]
        return
    (row,) = result.predictions.itertuples()
    assert np.isfinite(result.predictions.filter(like="p_").to_numpy()).all()
    history = packet["prv_candidates"]
    bad = out_of_range(ZTF, edits, "prv_candidates", (ZTF.time, ZTF.mag, ZTF.mag_err))
    rows_bad = {index for _, index, _, _ in bad}
    assert len(rows_bad) <= row.dropped_photometry <= len(history)


@fuzz(60)
@given(data=st.data())
def test_rubin_numeric_extremes_are_rejected_or_dropped_never_raised(data):
    """Every numeric field of a Rubin packet at the extremes of its type: the alert reads
    into a series with finite photometry, or is rejected in one line; a detection out of
    its range is rejected, a history row out of range dropped and counted."""
    schema = fastavro.parse_schema(copy.deepcopy(RUBIN_SCHEMA))
    record = rubin_record(60000.5, data.draw(st.sampled_from("ugrizy")), 3631.0)
    record["prvDiaSources"] = [
        dict(record["prvDiaSources"][0]) for _ in range(data.draw(st.integers(1, 3)))
    ]
    packet, edits = data.draw(
        edited_packet(RUBIN_SCHEMA, record, "diaSource", "prvDiaSources", "diaSource")
    )
    try:
        found = read_alert_bytes(_avro(schema, packet), "x.avro", ("science", "difference"))
    except ConventionError as err:
        assert "\n" not in err.message
        return
    used = {RUBIN.time, RUBIN.ra, RUBIN.dec, RUBIN.flux, RUBIN.flux_err}
    if out_of_range(RUBIN, edits, "diaSource", used):
        assert found.errors and not found.alerts
        return
    for err in found.errors:
        assert "\n" not in err.message
    (alert,) = found.alerts
    series = alert_series([alert], ("science", "difference"))
    lc = series.lightcurve
    assert np.isfinite(lc["flux"]).all() and np.isfinite(lc["flux_err"]).all()
    assert np.isfinite(series.frames).all()
    history = packet["prvDiaSources"]
    bad = out_of_range(RUBIN, edits, "prvDiaSources", (RUBIN.time, RUBIN.flux, RUBIN.flux_err))
    rows_bad = {index for _, index, _, _ in bad}
    assert len(rows_bad) <= alert.dropped_rows <= len(history)
