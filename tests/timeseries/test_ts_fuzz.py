"""Fuzzed readers: random and mutated PhysioNet 2012 records, long tables, FHIR bundles and
wearable tables. Every outcome is a result or a :class:`pmed.errors.PmedError`, never another
exception."""

from __future__ import annotations

import csv
import functools
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmed.errors import PmedError
from pmed.timeseries import (
    read_fhir,
    read_long,
    read_physionet_record,
    read_wearable,
    run_timeseries,
)
from pmed.timeseries.features import detect_format

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)

STAY = """Time,Parameter,Value
00:00,RecordID,900001
00:00,Age,64
00:00,Gender,1
00:00,Height,-1
00:00,ICUType,3
00:00,Weight,81.5
00:07,HR,88
00:07,SysABP,110
00:07,Temp,99.5
00:30,FiO2,40
01:37,HR,0
02:37,HR,96
02:40,Urine,120
47:59,HR,101
"""

unknowns = st.sampled_from(["error", "keep", "drop"])


@pytest.fixture(scope="module", autouse=True)
def _versions_once():
    """Library versions are looked up once, not per example (each lookup parses metadata)."""
    import pmed.result

    original = pmed.result._versions
    cached = functools.lru_cache(maxsize=None)(original)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pmed.result, "_versions", lambda libs: dict(cached(tuple(libs))))
        yield


def _outcome(fn, *args, **kwargs):
    """The result, or None when a pmed error was raised; any other exception fails the test."""
    try:
        return fn(*args, **kwargs)
    except PmedError as e:
        assert str(e)  # every pmed error has a message
        return None


def _check_series(ts) -> None:
    assert list(ts.data.columns) == ["patient_id", "time", "variable", "value"]
    assert np.isfinite(ts.data["time"].to_numpy(float)).all()
    v = ts.data["value"].to_numpy(float)
    assert not np.isinf(v).any()  # ±inf is set missing, never kept


def _check_result(res) -> None:
    if res is None:
        return
    _check_series(res.series)
    f = res.to_block().data
    assert f.index.name == "patient_id" and f.index.is_unique
    assert all(isinstance(i, str) for i in f.index)
    json.dumps(res.summary(), allow_nan=False)


def _write(text: str | bytes, name: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    tmp = tempfile.TemporaryDirectory()
    p = Path(tmp.name) / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8", errors="surrogatepass")
    return tmp, p


# --------------------------------------------------------------------------- mutations
@st.composite
def mutated_text(draw, base: str) -> str:
    """``base`` with a few random edits: characters inserted, deleted or replaced, lines
    dropped, duplicated or swapped, fields replaced, the text cut short."""
    text = base
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace_line", "drop_line", "dup_line", "swap",
                                     "field", "truncate"]))
        lines = text.split("\n")
        if kind == "insert":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.text(max_size=6)) + text[i:]
        elif kind == "delete" and text:
            i = draw(st.integers(0, len(text) - 1))
            text = text[:i] + text[i + draw(st.integers(1, 8)):]
        elif kind == "replace_line" and lines:
            lines[draw(st.integers(0, len(lines) - 1))] = draw(st.text(max_size=20))
            text = "\n".join(lines)
        elif kind == "drop_line" and lines:
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "\n".join(lines)
        elif kind == "dup_line" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif kind == "swap" and len(lines) > 1:
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == "field" and len(lines) > 1:
            i = draw(st.integers(1, len(lines) - 1))
            parts = lines[i].split(",")
            k = draw(st.integers(0, max(0, len(parts) - 1)))
            parts[k] = draw(st.one_of(
                st.sampled_from(["", "nan", "inf", "-inf", "-1", "1e309", "99:99", "-01:00", "12:60", "RecordID",
                                 "NaN", "0x10", " ", "HR", "Temp", "FiO2", "Weight", "1" * 30]),
                st.text(max_size=8)))
            lines[i] = ",".join(parts)
            text = "\n".join(lines)
        elif kind == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
    return text


# --------------------------------------------------------------------------- PhysioNet 2012
@FUZZ
@given(text=st.one_of(mutated_text(STAY), st.text(max_size=200),
                      st.builds(lambda b: "Time,Parameter,Value\n" + b, st.text(max_size=200))),
       unknown=unknowns)
def test_physionet_record_fuzz(text, unknown):
    tmp, p = _write(text, "900001.txt")
    with tmp:
        ts = _outcome(read_physionet_record, p, unknown=unknown)
        if ts is not None:
            _check_series(ts)
        _check_result(_outcome(run_timeseries, p, format="physionet2012", unknown=unknown))


@FUZZ
@given(data=st.binary(max_size=300), name=st.sampled_from(["1.txt", "set-a.tar.gz", "1.txt.gz"]))
def test_physionet_binary_fuzz(data, name):
    """Bytes that are not text, or not an archive, whatever the name says."""
    tmp, p = _write(data, name)
    with tmp:
        _check_result(_outcome(run_timeseries, p, format="physionet2012"))
        _outcome(detect_format, p)


# --------------------------------------------------------------------------- long tables
cells = st.one_of(st.none(), st.text(max_size=8),
                  st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-1", "2024-01-01T08:00:00Z",
                                   "2024-13-01", "1.5", "", "NA"]),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.integers(-10**6, 10**6).map(str))
variables = st.one_of(st.sampled_from(["heart_rate", "sbp", "temperature", "HR", "Temp", "Urine", "Weight",
                                       "FiO2", "PaO2", "SysABP", "NISysABP", "spo2"]), st.text(min_size=1, max_size=6))
times = st.one_of(st.floats(-100, 200, allow_nan=False).map(lambda x: f"{x:.3f}"),
                  st.datetimes().map(lambda d: d.isoformat() + "Z"), cells)


def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([["" if c is None else c for c in r] for r in rows])
    return buf.getvalue()


@st.composite
def long_rows(draw) -> tuple[list[str], list[list]]:
    """A plausible long table (mostly valid rows, sometimes date-times), then a few cells or
    header names replaced by anything."""
    iso = draw(st.booleans())
    t0 = np.datetime64("2024-03-01T00:00:00")
    rows, h = [], draw(st.floats(-2, 10, allow_nan=False))
    for _ in range(draw(st.integers(0, 25))):
        h += draw(st.floats(0, 6, allow_nan=False))  # forward in time (sort=True is tried too)
        t = str(t0 + np.timedelta64(int(h * 3600), "s")) + "Z" if iso else f"{h:.4f}"
        rows.append([draw(st.sampled_from(["a", "b", "c"])), t, draw(variables),
                     repr(draw(st.floats(-50, 500, allow_nan=False)))])
    header = ["patient_id", "time", "variable", "value"]
    for _ in range(draw(st.integers(0, 3))):
        if rows and draw(st.integers(0, 4)):
            rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, 3))] = draw(cells)
        else:
            header[draw(st.integers(0, 3))] = draw(st.sampled_from(["patient_id", "time", "x", "", "value"]))
    return header, rows


@FUZZ
@given(table=long_rows(), sort=st.booleans(), unknown=unknowns,
       suffix=st.sampled_from([".csv", ".tsv", ".parquet"]))
def test_long_table_fuzz(table, sort, unknown, suffix):
    header, body = table
    tmp = tempfile.TemporaryDirectory()
    with tmp:
        p = Path(tmp.name) / f"long{suffix}"
        if suffix == ".parquet":
            if len(set(header)) < len(header):
                return  # Parquet cannot hold duplicate column names
            pd.DataFrame(body, columns=header, dtype=object).to_parquet(p)
        else:
            text = _csv(header, body)
            p.write_text(text.replace(",", "\t") if suffix == ".tsv" else text)
        ts = _outcome(read_long, p, unknown=unknown, sort=sort)
        if ts is not None:
            _check_series(ts)
        _check_result(_outcome(run_timeseries, p, format="long", unknown=unknown, start=0.0, end=24.0))
        _outcome(detect_format, p)


@FUZZ
@given(text=mutated_text("patient_id,time,variable,value\na,0,heart_rate,80\nb,0.5,sbp,120\n"
                         "a,1.5,temperature,101.3\na,2,heart_rate,90\nb,3,sbp,118\n"), unknown=unknowns)
def test_long_text_fuzz(text, unknown):
    tmp, p = _write(text, "long.csv")
    with tmp:
        _check_result(_outcome(run_timeseries, p, unknown=unknown))


# --------------------------------------------------------------------------- FHIR
def _obs(i, pid, when, code, value, unit):
    return {"fullUrl": f"urn:uuid:o{i}", "resource": {
        "resourceType": "Observation", "id": f"o{i}", "status": "final",
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "valueQuantity": {"value": value, "unit": unit, "code": unit}}}


BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "Patient", "id": "p1"}},
    _obs(1, "p1", "2024-03-01T08:00:00Z", "8867-4", 72, "/min"),
    {"resource": {"resourceType": "Observation", "id": "bp", "status": "final",
                  "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-03-01T09:30:00Z",
                  "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                  "component": [
                      {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                       "valueQuantity": {"value": 128, "code": "mm[Hg]"}},
                      {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                       "valueQuantity": {"value": 81, "code": "mm[Hg]"}}]}},
    _obs(3, "p1", "2024-03-01T10:00:00+02:00", "8310-5", 100.4, "[degF]"),
    _obs(4, "p2", "2024-03-02T00:00:00Z", "8867-4", 400, "/min"),
    _obs(5, "p2", "2024-03-02T01:00:00Z", "29463-7", 176.37, "[lb_av]"),
]}

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
              st.text(max_size=10), st.sampled_from(["Observation", "Bundle", "Patient/", "2024-03-01",
                                                     "8867-4", "/min", "[degF]", "entered-in-error"])),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


def _paths(obj, prefix=()):
    """Every (path, container) in a JSON value, for picking what to mutate."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_bundle(draw):
    obj = json.loads(json.dumps(BUNDLE))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(obj)
        path = draw(st.sampled_from(paths))
        if not path:
            obj = draw(json_values) if draw(st.integers(0, 9)) == 9 else obj
            continue
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        kind = draw(st.sampled_from(["delete", "replace", "replace"]))
        if kind == "delete":
            del parent[key]
        else:
            parent[key] = draw(json_values)
    text = json.dumps(obj)
    if draw(st.integers(0, 5)) == 5:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@FUZZ
@given(text=mutated_bundle(), unknown=unknowns, origin=st.sampled_from(["first", "midnight"]))
def test_fhir_structure_fuzz(text, unknown, origin):
    """Keys deleted, values of the wrong type, the text cut short."""
    tmp, p = _write(text, "bundle.json")
    with tmp:
        ts = _outcome(read_fhir, p, unknown=unknown, origin=origin)
        if ts is not None:
            _check_series(ts)
        _check_result(_outcome(run_timeseries, p, unknown=unknown))


@FUZZ
@given(text=st.one_of(mutated_text(json.dumps(BUNDLE, indent=1)), st.text(max_size=50)), unknown=unknowns)
def test_fhir_text_fuzz(text, unknown):
    tmp, p = _write(text, "bundle.json")
    with tmp:
        _check_result(_outcome(run_timeseries, p, unknown=unknown))


# --------------------------------------------------------------------------- wearables
WEAR = ("patient_id,timestamp,steps,heart_rate\n"
        "w1,2024-05-01T23:58:00Z,12,88\nw1,2024-05-01T23:59:00Z,0,61\nw1,2024-05-02T00:00:00Z,80,120\n"
        "w2,2024-05-01T10:00:00Z,0,70\nw2,2024-05-01T10:01:00Z,5,72\n")


@st.composite
def wear_rows(draw) -> str:
    t0 = np.datetime64("2024-05-01T00:00:00")
    rows, minute = [], {}
    for _ in range(draw(st.integers(0, 30))):
        pid = draw(st.sampled_from(["w1", "w2"]))
        minute[pid] = minute.get(pid, 0) + draw(st.integers(0, 600))
        rows.append([pid, str(t0 + np.timedelta64(minute[pid], "m")) + "Z",
                     str(draw(st.integers(-5, 400))), repr(draw(st.floats(0, 300, allow_nan=False)))])
    for _ in range(draw(st.integers(0, 2))):
        if rows:
            rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, 3))] = draw(cells)
    return _csv(["patient_id", "timestamp", "steps", "heart_rate"], rows)


@FUZZ
@given(text=st.one_of(mutated_text(WEAR), wear_rows()), unknown=unknowns, epoch=st.sampled_from([1.0, 15.0, 0.5]))
def test_wearable_fuzz(text, unknown, epoch):
    tmp, p = _write(text, "watch.csv")
    with tmp:
        ts = _outcome(read_wearable, p, unknown=unknown)
        if ts is not None:
            _check_series(ts)
        _check_result(_outcome(run_timeseries, p, format="wearable", unknown=unknown, epoch_minutes=epoch))
