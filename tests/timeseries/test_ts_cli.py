"""``pmed timeseries features`` on its own Typer app: outputs, and pmed errors for bad input."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from pmed.cli.timeseries import app
from pmed.errors import InputError, ValidationError

runner = CliRunner()

STAY = ("Time,Parameter,Value\n00:00,RecordID,{rid}\n00:00,Age,70\n00:00,Gender,0\n00:00,ICUType,2\n"
        "00:05,HR,{hr}\n00:05,NISysABP,100\n03:00,HR,95\n03:00,Temp,98.6\n")


def test_features_physionet_folder(tmp_path):
    folder = tmp_path / "set-a"
    folder.mkdir()
    for rid, hr in (("1", 120), ("2", 80)):
        (folder / f"{rid}.txt").write_text(STAY.format(rid=rid, hr=hr))
    (tmp_path / "Outcomes-a.txt").write_text(
        "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n1,20,5,3,2,1\n2,10,1,4,-1,0\n")
    out = tmp_path / "f.csv"
    res = runner.invoke(app, ["features", str(folder), "--out", str(out), "--flags", str(tmp_path / "flags.csv"),
                              "--patients-out", str(tmp_path / "patients.csv")])
    assert res.exit_code == 0, res.output
    assert "2 values converted" in res.output
    f = pd.read_csv(out, index_col="patient_id")
    assert f.loc[1, "ShockIndex__first"] == pytest.approx(1.2) and f.loc[2, "HR__count"] == 2
    assert f.loc[1, "Temp__first"] == pytest.approx(37.0)
    assert "Age" not in f  # descriptors go to the patient table when --patients-out is given
    pts = pd.read_csv(tmp_path / "patients.csv", index_col="patient_id")
    assert pts.loc[1, "In-hospital_death"] == 1 and pts.loc[2, "Age"] == 70
    flags = pd.read_csv(tmp_path / "flags.csv")
    assert flags["action"].tolist() == ["converted", "converted"]


def test_features_errors_propagate_as_pmed_errors(tmp_path):
    bad = tmp_path / "long.csv"
    bad.write_text("patient_id,time,variable,value\na,1,heart_rate,80\na,0.5,heart_rate,81\n")
    res = runner.invoke(app, ["features", str(bad), "--out", str(tmp_path / "x.parquet")])
    assert isinstance(res.exception, InputError) and "times go backwards" in str(res.exception)
    bad.write_text("patient_id,time,variable,value\na,1,pulse,80\n")
    res = runner.invoke(app, ["features", str(bad), "--out", str(tmp_path / "x.parquet")])
    assert isinstance(res.exception, ValidationError)
    res = runner.invoke(app, ["features", str(bad), "--unknown", "keep", "--out", str(tmp_path / "x.parquet")])
    assert res.exit_code == 0 and pd.read_parquet(tmp_path / "x.parquet").set_index("patient_id").loc["a", "pulse__count"] == 1
