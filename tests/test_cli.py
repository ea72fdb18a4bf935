"""The CLI is a thin layer: these tests check parsing, outputs and error → exit-code mapping."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from conftest import write_study
from pmed.cli import main


def test_run_and_predict(clinical_files, tmp_path, capsys):
    study = write_study(tmp_path, models=("linear",))
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "selected: linear" in printed and "auroc" in printed
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["selected_model"] == "linear"
    code = main(["predict", "--model", str(tmp_path / "out" / "model"),
                 "--patients", str(clinical_files["new"]), "--out", str(tmp_path / "p.csv")])
    assert code == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    assert list(pred.columns) == ["patient_id", "probability", "predicted_class", "prediction_set"]
    assert len(pred) == 4


def test_errors_map_to_exit_codes_without_traceback(clinical_files, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {patients: p.csv}\ntarget: {column: y, task: binary}\nmodels: [{family: nope}]\n")
    assert main(["run", str(bad)]) == 6
    err = capsys.readouterr().err
    assert "models[0].family" in err and "Traceback" not in err

    assert main(["validate", str(tmp_path / "absent.csv")]) == 2
    df = pd.read_csv(clinical_files["patients"])
    df.loc[3, "bmi"] = 900
    df.to_csv(tmp_path / "p.csv", index=False)
    assert main(["validate", str(tmp_path / "p.csv"), "--schema", str(clinical_files["schema"])]) == 4
    err = capsys.readouterr().err
    assert "bmi" in err and "900" in err and "lines 5" in err
    assert main(["predict", "--model", str(tmp_path), "--patients", str(clinical_files["new"])]) == 7


def test_validate_ok(clinical_files, capsys):
    assert main(["validate", str(clinical_files["patients"]), "--schema", str(clinical_files["schema"])]) == 0
    assert "300 patients" in capsys.readouterr().out


def test_console_script_entry_point(tmp_path):
    exe = Path(sys.executable).with_name("pmed")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pmed"]
    r = subprocess.run([*cmd, "validate", str(tmp_path / "x.csv")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "file not found" in r.stderr and "Traceback" not in r.stderr


def test_predict_writes_patient_reports(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear",))
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 0
    assert main(["predict", "--model", str(tmp_path / "out" / "model"), "--patients", str(clinical_files["new"]),
                 "--out", str(tmp_path / "p.csv"), "--report", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "N0.html").read_text()
    assert "What drove this prediction" in html and "90% prediction set" in html
    assert "Higher than" in html and "data:image/png;base64," in html
    assert "SHAP contributions on the probability scale" in html  # the per-patient waterfall


def test_cli_limits_match_the_api():
    """The CLI keeps a few limits as constants (no heavy import at start-up): they must agree."""
    import pmed.cli as cli
    from pmed.cli._params import SEED_MAX
    from pmed.demo import MIN_PATIENTS
    from pmed.evaluate import engine

    assert cli.DEMO_MIN_PATIENTS == MIN_PATIENTS
    assert cli.MAX_BOOTSTRAP == engine.MAX_BOOTSTRAP
    assert SEED_MAX == engine._SEED_MAX == 2**32 - 1
