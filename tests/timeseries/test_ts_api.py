"""``run_timeseries``: the result, its files, its block read back, and options refused up front."""

import json
import warnings

import pandas as pd
import pytest
from typer.testing import CliRunner

from pmed.cohort import Cohort, read_block
from pmed.errors import InputError, MissingDependencyError, OptionError, PmedWarning
from pmed.timeseries import TimeseriesResult, features_from_file, run_timeseries

STAY = ("Time,Parameter,Value\n00:00,RecordID,{rid}\n00:00,Age,70\n00:00,Gender,0\n00:00,ICUType,2\n"
        "00:05,HR,{hr}\n00:05,NISysABP,100\n03:00,HR,95\n03:00,Temp,98.6\n")
OUTCOMES = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n1,20,5,3,2,1\n2,10,1,4,-1,0\n"


@pytest.fixture
def stays(tmp_path):
    folder = tmp_path / "set-a"
    folder.mkdir()
    for rid, hr in (("1", 120), ("2", 80)):
        (folder / f"{rid}.txt").write_text(STAY.format(rid=rid, hr=hr))
    (tmp_path / "Outcomes-a.txt").write_text(OUTCOMES)
    return folder


def test_result_block_summary_and_patient_table(stays):
    res = run_timeseries(stays)
    assert isinstance(res, TimeseriesResult) and res.format == "physionet2012"
    assert res.features.index.tolist() == ["1", "2"] and res.features.loc["1", "ShockIndex__first"] == 1.2
    block = res.to_block()
    assert block.provenance["domain"] == "timeseries" and block.provenance["window_hours"] == [0.0, 48.0]
    assert {i["role"] for i in block.provenance["inputs"]} == {"source"}
    s = res.summary()
    assert (s["n_patients"], s["n_converted"], s["n_flags"]) == (2, 2, 2)
    assert "In-hospital_death" in s["outcomes"]
    json.dumps(s, allow_nan=False)
    pts = res.patient_table()
    assert pts.loc["1", "In-hospital_death"] == 1 and pts.loc["2", "Age"] == 70
    # the old tuple form gives the same features
    feats, ts, prov = features_from_file(stays)
    pd.testing.assert_frame_equal(feats, res.features)
    assert prov["format"] == "physionet2012" and ts.summary()["n_patients"] == 2
    cohort = Cohort(pd.DataFrame({"age": [1.0, 2.0]}, index=pd.Index(["1", "2"], name="patient_id")))
    cohort.add_block(res.block_name, block)
    assert cohort.blocks["timeseries"].data.shape == res.features.shape


def test_write_folder_and_read_back(stays, tmp_path):
    res = run_timeseries(stays, static=False)
    files = res.write(tmp_path / "out")
    assert {p.name for p in files.values()} == {"features.parquet", "qc_flags.csv", "patients.csv",
                                                 "provenance.json"}
    got = read_block(tmp_path / "out")
    pd.testing.assert_frame_equal(got.data, res.features, check_names=False)
    assert got.provenance["domain"] == "timeseries"
    assert read_block(tmp_path / "out" / "features.parquet").provenance["reader"] == "pmed.timeseries.api.read_block"
    # the patient table in the same folder is a plain table
    pts = read_block(tmp_path / "out" / "patients.csv")
    assert pts.provenance["reader"] == "pmed.io.read_table" and pts.data.loc["1", "In-hospital_death"] == 1


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_feature_file_with_provenance_beside(stays, tmp_path, suffix):
    res = run_timeseries(stays, static=False)
    out = tmp_path / "res" / f"ts{suffix}"
    out.parent.mkdir()
    files = res.write_feature_file(out, patients=tmp_path / "res" / "patients.csv")
    prov = json.loads(files["provenance"].read_text())
    assert prov["domain"] == "timeseries" and prov["features_file"] == out.name
    assert sorted(prov["outputs"]) == ["patients.csv", out.name]
    got = read_block(out)
    assert got.provenance["domain"] == "timeseries"
    pd.testing.assert_frame_equal(got.data[res.features.columns], res.features, check_names=False,
                                  check_dtype=False)
    assert read_block(tmp_path / "res" / "patients.csv").provenance["reader"] == "pmed.io.read_table"


def test_feature_file_keeps_another_domains_provenance(stays, tmp_path):
    (tmp_path / "provenance.json").write_text(json.dumps({"domain": "prs"}))
    res = run_timeseries(stays)
    with pytest.warns(PmedWarning, match="belongs to the 'prs' output"):
        files = res.write_feature_file(tmp_path / "ts.parquet")
    assert "provenance" not in files
    assert json.loads((tmp_path / "provenance.json").read_text()) == {"domain": "prs"}


def test_options_are_refused_before_reading(tmp_path):
    missing = tmp_path / "nothing-here.csv"
    for kw in ({"format": "xyz"}, {"unknown": "ignore"}, {"start": 5.0, "end": 5.0},
               {"epoch_minutes": 0}, {"start": float("nan")}):
        with pytest.raises(OptionError):
            run_timeseries(missing, **kw)
    with pytest.raises(ValueError, match="end > start"):  # still a ValueError for old callers
        run_timeseries(missing, start=5.0, end=1.0)
    with pytest.raises(InputError, match="not found"):
        run_timeseries(missing)


def test_cli_bad_format_is_a_clean_error(stays, tmp_path):
    from pmed.cli.timeseries import app

    res = CliRunner().invoke(app, ["features", str(stays), "--format", "xyz", "--out", str(tmp_path / "f.csv")])
    assert res.exit_code == 2 and not (tmp_path / "f.csv").exists()
    assert "Traceback" not in res.output


def test_cli_writes_provenance_beside_the_feature_file(stays, tmp_path):
    from pmed.cli.timeseries import app

    out = tmp_path / "res" / "ts.parquet"
    out.parent.mkdir()
    res = CliRunner().invoke(app, ["features", str(stays), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads((out.parent / "provenance.json").read_text())["features_file"] == "ts.parquet"
    assert read_block(out).provenance["domain"] == "timeseries"


def test_messages_do_not_echo_patient_ids(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text("patient_id,time,variable,value\nSECRET-ID-123,2,sbp,120\nSECRET-ID-123,1,sbp,110\n")
    with pytest.raises(InputError, match="times go backwards") as e:
        run_timeseries(p)
    assert "SECRET" not in str(e.value) and "line 3" in str(e.value)


def test_unreadable_sources_are_input_errors(tmp_path):
    txt = tmp_path / "1.txt"
    txt.write_bytes(b"Time,Parameter,Value\n00:00,HR,\xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        run_timeseries(txt, format="physionet2012")
    odd = tmp_path / "data.xyz"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="cannot tell the format"):
        run_timeseries(odd)
    out = tmp_path / "Outcomes-a.txt"
    out.write_text("RecordID,In-hospital_death\nabc,1\n")
    from pmed.timeseries import read_physionet_outcomes

    with pytest.raises(InputError, match="RecordID must be a whole number") as e:
        read_physionet_outcomes(out)
    assert "line 2" in str(e.value)


def test_optional_dependency_names_the_extra(monkeypatch):
    import sys

    from pmed.timeseries import ecg

    monkeypatch.setitem(sys.modules, "neurokit2", None)  # as if not installed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MissingDependencyError, match=r"pmed\[timeseries\]"):
            ecg.r_peaks([0.0] * 1000, 100.0)
