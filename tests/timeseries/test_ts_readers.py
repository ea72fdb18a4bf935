"""Readers: long tables, PhysioNet 2012 stays, FHIR bundles; clear errors for bad files."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed.datasets._paths import shared_data_dir
from pmed.errors import InputError, ValidationError
from pmed.timeseries import (
    read_fhir,
    read_long,
    read_physionet2012,
    read_physionet_record,
    read_wearable,
)

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
01:37,HR,0
02:37,HR,96
47:59,HR,101
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------- long format
def test_read_long_csv_hours(tmp_path):
    p = _write(tmp_path, "long.csv", "patient_id,time,variable,value\n"
               "a,0,heart_rate,80\nb,0.5,heart_rate,70\na,1.5,heart_rate,90\na,2,temperature,101.3\n")
    ts = read_long(p)
    assert ts.data.columns.tolist() == ["patient_id", "time", "variable", "value"]
    a = ts.data[ts.data["patient_id"] == "a"]
    assert a["time"].tolist() == [0.0, 1.5, 2.0]
    assert a["value"].tolist() == pytest.approx([80, 90, 38.5])  # 101.3 °F → 38.5 °C
    assert ts.flags["action"].tolist() == ["converted"] and ts.flags["line"].tolist() == [5]


def test_read_long_datetimes_and_parquet(tmp_path):
    df = pd.DataFrame({"pid": ["a", "a", "b"], "t": ["2024-01-01T08:00:00Z", "2024-01-01T10:30:00Z",
                                                     "2024-02-01T00:00:00Z"],
                       "var": ["sbp", "sbp", "sbp"], "val": [120.0, 110.0, 130.0]})
    p = tmp_path / "long.parquet"
    df.to_parquet(p)
    ts = read_long(p, id="pid", time="t", variable="var", value="val")
    assert ts.data["time"].tolist() == [0.0, 2.5, 0.0]
    mid = read_long(p, id="pid", time="t", variable="var", value="val", origin="midnight")
    assert mid.data["time"].tolist() == [8.0, 10.5, 0.0]


def test_read_long_errors(tmp_path):
    head = "patient_id,time,variable,value\n"
    with pytest.raises(InputError, match="times go backwards") as e:
        read_long(_write(tmp_path, "back.csv", head + "a,2,sbp,120\nb,0,sbp,100\na,1,sbp,110\n"))
    assert "back.csv: line 4:" in str(e.value)
    ok = read_long(tmp_path / "back.csv", sort=True)
    assert ok.data[ok.data.patient_id == "a"]["time"].tolist() == [1.0, 2.0]
    with pytest.raises(InputError, match="unparsable time") as e:
        read_long(_write(tmp_path, "t.csv", head + "a,2024-01-01T00:00Z,sbp,120\na,yesterday,sbp,1\n"))
    assert "t.csv: line 3:" in str(e.value)
    with pytest.raises(InputError, match="mixes numbers and text"):
        read_long(_write(tmp_path, "mix.csv", head + "a,1,sbp,120\na,noon,sbp,1\n"))
    with pytest.raises(InputError, match="no measurements"):
        read_long(_write(tmp_path, "empty.csv", head))
    with pytest.raises(InputError, match="unparsable value") as e:
        read_long(_write(tmp_path, "v.csv", head + "a,1,sbp,12O\n"))
    assert "v.csv: line 2:" in str(e.value)
    with pytest.raises(ValidationError, match="unknown variable 'bp_sys'"):
        read_long(_write(tmp_path, "u.csv", head + "a,1,bp_sys,120\n"))
    with pytest.raises(InputError, match="missing column"):
        read_long(_write(tmp_path, "c.csv", "id,time,variable,value\na,1,sbp,1\n"))


# --------------------------------------------------------------------------- PhysioNet 2012
def test_read_physionet_record(tmp_path):
    ts = read_physionet_record(_write(tmp_path, "900001.txt", STAY))
    assert ts.static.loc["900001"].to_dict() == {"Age": 64.0, "Gender": 1.0, "ICUType": 3.0} or (
        ts.static.loc["900001", ["Age", "Gender", "ICUType"]].tolist() == [64.0, 1.0, 3.0]
        and np.isnan(ts.static.loc["900001"].get("Height", np.nan)))
    hr = ts.data[ts.data["variable"] == "HR"]
    assert hr["time"].tolist() == pytest.approx([7 / 60, 1 + 37 / 60, 2 + 37 / 60, 47 + 59 / 60])
    assert np.isnan(hr["value"].iloc[1])  # HR 0 set missing
    temp = ts.data[ts.data["variable"] == "Temp"]["value"].iloc[0]
    assert temp == pytest.approx((99.5 - 32) * 5 / 9)
    assert sorted(ts.flags["action"]) == ["converted", "set_missing"]
    assert ts.data[ts.data["variable"] == "Weight"]["value"].tolist() == [81.5]


@pytest.mark.parametrize("text,match,where", [
    ("Time,Parameter,Value\n", "empty record", None),
    ("", "empty record", None),
    ("Time,Parameter,Value\n00:00,RecordID,1\n00:10,HR,80\n00:05,HR,81\n", "times go backwards", "line 4"),
    ("Time,Parameter,Value\n00:00,RecordID,1\n0:7x,HR,80\n", "unparsable time", "line 3"),
    ("Time,Parameter,Value\n00:00,RecordID,1\n00:07,HR,high\n", "unparsable value", "line 3"),
    ("Param,Time,Value\n", "unexpected header", "line 1"),
])
def test_physionet_bad_files(tmp_path, text, match, where):
    p = _write(tmp_path, "1.txt", text)
    with pytest.raises(InputError, match=match) as e:
        read_physionet_record(p)
    assert str(p) in str(e.value)
    if where:
        assert where in str(e.value)


def test_physionet_unknown_parameter(tmp_path):
    p = _write(tmp_path, "2.txt", "Time,Parameter,Value\n00:00,RecordID,2\n00:07,HeartRate,80\n")
    with pytest.raises(ValidationError) as e:
        read_physionet_record(p)
    assert "line 3" in str(e.value) and "'HeartRate'" in str(e.value)
    assert read_physionet_record(p, unknown="drop").data.empty


def test_physionet_folder_and_archive_with_outcomes(tmp_path):
    folder = tmp_path / "set-a"
    folder.mkdir()
    _write(folder, "900001.txt", STAY)
    _write(folder, "900002.txt", STAY.replace("900001", "900002").replace("00:07,HR,88", "00:07,HR,120"))
    _write(tmp_path, "Outcomes-a.txt", "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
                 "900001,12,3,5,-1,0\n900002,-1,9,2,2,1\n")
    ts = read_physionet2012(folder)  # finds Outcomes-a.txt beside the folder
    assert ts.outcomes["In-hospital_death"].to_dict() == {"900001": 0, "900002": 1}
    assert np.isnan(ts.outcomes.loc["900002", "SAPS-I"])
    tgz = tmp_path / "set-a.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        for f in sorted(folder.iterdir()):
            tar.add(f, arcname=f"set-a/{f.name}")
    ts2 = read_physionet2012(tgz)
    pd.testing.assert_frame_equal(ts.data, ts2.data)
    assert read_physionet2012(tgz, limit=1).static.index.tolist() == ["900001"]
    assert read_physionet2012(tgz, ids=["900002"], outcomes=None).outcomes is None


@pytest.mark.realdata
def test_physionet_real_excerpt():
    root = shared_data_dir() / "data" / "ehr" / "physionet2012"
    if not (root / "set-a.tar.gz").exists():
        pytest.skip(f"PhysioNet 2012 archive absent: {root / 'set-a.tar.gz'}")
    ts = read_physionet2012(root / "set-a.tar.gz", ids=["132539", "132540"])
    # 132539 opens with Age 54, Gender 0, ICUType 4, Height/Weight -1; first HR 73 at 00:07
    assert ts.static.loc["132539", ["Age", "Gender", "ICUType"]].tolist() == [54.0, 0.0, 4.0]
    assert np.isnan(ts.static.loc["132539", "Height"])
    hr = ts.data[(ts.data.patient_id == "132539") & (ts.data.variable == "HR")]
    assert hr["value"].iloc[0] == 73 and hr["time"].iloc[0] == pytest.approx(7 / 60)
    assert hr["time"].max() <= 48
    assert ts.outcomes.loc["132539", ["SAPS-I", "In-hospital_death"]].tolist() == [6, 0]
    assert ts.outcomes.loc["132540", "SAPS-I"] == 16


# --------------------------------------------------------------------------- FHIR
def _obs(i, pid, when, code, value, unit, components=None):
    o = {"resourceType": "Observation", "id": f"o{i}", "status": "final",
         "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
         "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}
    if value is not None:
        o["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if components:
        o["component"] = [{"code": {"coding": [{"system": "http://loinc.org", "code": c}]},
                           "valueQuantity": {"value": v, "code": u}} for c, v, u in components]
    return {"fullUrl": f"urn:uuid:o{i}", "resource": o}


def _bundle(entries):
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}] + entries}


def test_read_fhir_bundle(tmp_path):
    b = _bundle([
        _obs(1, "p1", "2024-03-01T08:00:00Z", "8867-4", 72, "/min"),
        _obs(2, "p1", "2024-03-01T09:30:00Z", "85354-9", None, None,
             components=[("8480-6", 128, "mm[Hg]"), ("8462-4", 81, "mm[Hg]")]),
        _obs(3, "p1", "2024-03-01T10:00:00+02:00", "8310-5", 100.4, "[degF]"),
        _obs(4, "p2", "2024-03-02T00:00:00Z", "8867-4", 400, "/min"),
        _obs(5, "p2", "2024-03-02T01:00:00Z", "29463-7", 176.37, "[lb_av]"),
    ])
    p = _write(tmp_path, "bundle.json", json.dumps(b))
    ts = read_fhir(p)
    d = ts.data.set_index(["patient_id", "variable"])
    assert d.loc[("p1", "heart_rate"), "value"] == 72 and d.loc[("p1", "heart_rate"), "time"] == 0
    assert d.loc[("p1", "sbp"), "value"] == 128 and d.loc[("p1", "dbp"), "time"] == 1.5
    # 10:00+02:00 is 08:00Z: the same instant as the first observation
    assert d.loc[("p1", "temperature"), "value"] == pytest.approx(38.0)
    assert d.loc[("p1", "temperature"), "time"] == 0
    assert np.isnan(d.loc[("p2", "heart_rate"), "value"])  # 400/min is implausible
    assert d.loc[("p2", "weight"), "value"] == pytest.approx(80.0, abs=0.01)
    assert sorted(ts.flags["action"]) == ["converted", "converted", "set_missing"]


def test_read_fhir_errors(tmp_path):
    unknown = _write(tmp_path, "u.json", json.dumps(_bundle([_obs(1, "p1", "2024-03-01T08:00:00Z", "1234-5", 1, "1")])))
    with pytest.raises(ValidationError, match="unknown LOINC code '1234-5'"):
        read_fhir(unknown)
    assert read_fhir(unknown, unknown="keep").data["variable"].tolist() == ["loinc:1234-5"]
    bad_unit = _write(tmp_path, "bu.json", json.dumps(_bundle([_obs(1, "p1", "2024-03-01T08:00:00Z",
                                                                     "8310-5", 310, "K")])))
    with pytest.raises(ValidationError, match="unit 'K'"):
        read_fhir(bad_unit)
    empty = _write(tmp_path, "e.json", json.dumps(_bundle([])))
    with pytest.raises(InputError, match="no Observations"):
        read_fhir(empty)
    bad_time = _write(tmp_path, "t.json", json.dumps(_bundle([_obs(1, "p1", "March 1st", "8867-4", 70, "/min")])))
    with pytest.raises(InputError, match="unparsable effectiveDateTime"):
        read_fhir(bad_time)
    with pytest.raises(InputError, match="cannot read JSON"):
        read_fhir(_write(tmp_path, "x.json", "{not json"))


# --------------------------------------------------------------------------- wearables
def test_read_wearable_wide(tmp_path):
    text = ("patient_id,timestamp,steps,heart_rate\n"
            "w1,2024-05-01T23:59:00Z,12,88\nw1,2024-05-02T00:00:00Z,0,61\nw1,2024-05-02T00:01:00Z,-3,250.5\n")
    ts = read_wearable(_write(tmp_path, "w.csv", text))
    steps = ts.data[ts.data.variable == "steps"]
    assert steps["time"].tolist() == pytest.approx([23 + 59 / 60, 24.0, 24 + 1 / 60])
    assert np.isnan(steps["value"].iloc[2])
    assert np.isnan(ts.data[ts.data.variable == "heart_rate"]["value"].iloc[2])
    with pytest.raises(ValidationError, match="unknown variable 'spo2'"):
        read_wearable(_write(tmp_path, "w2.csv", "patient_id,timestamp,spo2\nw1,2024-05-01T00:00:00Z,97\n"))
    with pytest.raises(InputError, match="times go backwards"):
        read_wearable(_write(tmp_path, "w3.csv", "patient_id,timestamp,steps\nw1,2024-05-01T01:00:00Z,1\n"
                                                 "w1,2024-05-01T00:00:00Z,1\n"))

