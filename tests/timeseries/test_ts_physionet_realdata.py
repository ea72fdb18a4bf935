"""PhysioNet 2012 set A, 400 real stays: reader → features → the standard study flow (`pmed run`)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pmed.datasets._paths import shared_data_dir
from pmed.evaluate.discrimination import delong_auc
from pmed.timeseries import read_physionet2012, timeseries_block

ROOT = shared_data_dir() / "data" / "ehr" / "physionet2012"


def _require():
    for f in ("set-a.tar.gz", "Outcomes-a.txt"):
        if not (ROOT / f).exists():
            pytest.skip(f"PhysioNet 2012 file absent: {ROOT / f}")


@pytest.mark.realdata
def test_physionet_excerpt_features_and_study(tmp_path):
    _require()
    ts = read_physionet2012(ROOT / "set-a.tar.gz", limit=400)
    assert len(ts.static) == 400 and ts.outcomes.index.equals(ts.static.index)
    assert ts.data["time"].between(0, 48).all()
    # real artefacts are caught: zero invasive pressures and Temp -17.8 (0 °F) are set missing
    sm = ts.flags[ts.flags.action == "set_missing"]
    assert (sm[sm.variable == "SysABP"]["value"] == 0).any()
    assert ts.data.loc[ts.data.variable == "Temp", "value"].dropna().between(25, 45).all()
    feats, prov = timeseries_block(ts)
    assert feats.shape[0] == 400 and feats.shape[1] > 300 and prov["window_hours"] == [0.0, 48.0]
    assert feats["HR__count"].median() > 40  # hourly or denser heart rate in most stays

    # the CLI writes the feature block and a patient table; `pmed run` takes it from there
    from pmed.cli.timeseries import app

    small = tmp_path / "set-a"
    small.mkdir()
    import tarfile

    with tarfile.open(ROOT / "set-a.tar.gz") as tar:
        members = [m for m in tar if m.isfile() and m.name.endswith(".txt")][:400]
        for m in members:
            (small / m.name.split("/")[-1]).write_bytes(tar.extractfile(m).read())
    # the outcomes of just these stays, so that the study's patient table is complete
    lines = (ROOT / "Outcomes-a.txt").read_text().splitlines()
    keep = {p.stem for p in small.glob("*.txt")}
    (tmp_path / "Outcomes-a.txt").write_text("\n".join([lines[0]] + [x for x in lines[1:] if x.split(",")[0] in keep]))
    res = CliRunner().invoke(app, ["features", str(small), "--out", str(tmp_path / "ts.parquet"),
                                   "--patients-out", str(tmp_path / "patients.csv")])
    assert res.exit_code == 0, res.output
    (tmp_path / "study.yaml").write_text("""\
name: physionet2012-excerpt
data:
  patients: patients.csv
  outcomes: [SAPS-I, SOFA, Length_of_stay, Survival]
  blocks: {timeseries: ts.parquet}
target: {column: In-hospital_death, task: binary}
features: {exclude: [SAPS-I, SOFA, Length_of_stay, Survival]}
models:
  - family: lightgbm
    params: {n_estimators: 100}
evaluation: {folds: 5, repeats: 1, bootstrap: 50}
seed: 0
""")
    from pmed.study import run_study

    result = run_study(tmp_path / "study.yaml", tmp_path / "run")
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    auc = m["models"]["lightgbm"]["metrics"]["auroc"]["estimate"]
    assert m["n_patients"] == 400 and result.selected == "lightgbm"
    # 400 stays only (≈ 55 deaths): well above chance, and above SAPS-I on the same stays
    y = ts.outcomes["In-hospital_death"].to_numpy()
    saps = ts.outcomes["SAPS-I"].fillna(ts.outcomes["SAPS-I"].median()).to_numpy()
    saps_auc = delong_auc(y, saps)["estimate"]
    assert 0.70 < auc < 0.95 and auc > saps_auc
    assert np.isfinite(m["models"]["lightgbm"]["metrics"]["auroc"]["ci_low"])
