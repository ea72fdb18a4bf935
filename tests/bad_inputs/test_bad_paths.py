"""Bad inputs (issue #16): writes outside the output folder, outputs that would replace inputs."""

import pandas as pd
import pytest
from badinput import bad_input, refused

from conftest import write_study

# ---------------------------------------------------------------------------------------------
# A. data values as file names: patient IDs never climb out of, or nest inside, the output folder
# ---------------------------------------------------------------------------------------------

BAD_IDS = ["../../x", "a/b", "/etc/passwd", "p" * 300, "CON", "Case", "case", "Müller", "..", "///"]


@bad_input("outside")
def test_patient_reports_with_hostile_ids_stay_in_the_folder(clinical_files, tmp_path):
    from pmed.study import load_bundle, run_study
    from pmed.study.predict import new_patient_features, predict_patients, write_patient_reports

    bundle = load_bundle(run_study(write_study(tmp_path, models=("linear",)), tmp_path / "out").bundle_path)
    new = pd.read_csv(clinical_files["new"])
    new = pd.concat([new] * 3, ignore_index=True).iloc[: len(BAD_IDS)]
    new["patient_id"] = BAD_IDS
    work = tmp_path / "deep" / "er"
    work.mkdir(parents=True)
    new.to_csv(work / "new.csv", index=False)
    X = new_patient_features(bundle, work / "new.csv")
    pred = predict_patients(bundle, work / "new.csv")
    reports = work / "reports"
    paths = write_patient_reports(bundle, X, pred, reports)
    assert len(paths) == len(BAD_IDS)
    files = sorted(p.name for p in reports.iterdir())
    assert len([f for f in files if f.endswith(".html")]) == len(BAD_IDS)
    assert all(p.parent == reports for p in paths)  # no subfolder, nothing outside
    assert len({p.name.casefold() for p in paths}) == len(BAD_IDS)  # one file per patient, any FS
    assert not (tmp_path / "x.html").exists() and not list(reports.glob("*/"))
    index = pd.read_csv(reports / "index.csv", keep_default_na=False)
    assert list(index["patient_id"]) == BAD_IDS  # the index maps each report back to its patient
    assert set(index["report"]) == {p.name for p in paths}


# ---------------------------------------------------------------------------------------------
# B. outputs that would replace an input: refused with exit 2, one line, input bytes unchanged
# ---------------------------------------------------------------------------------------------

def _refused(capsys, argv, *inputs):
    # the test folder is the root: every file in it (the inputs) stays unchanged, nothing is added
    root = inputs[0].parent
    while root.name in {"o", "ev"}:
        root = root.parent
    refused(capsys, root, argv, code=2, says="replace")


def _file(path, text="a,b\n1,2\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@bad_input("overwrite")
def test_predict_out_equal_to_patients(tmp_path, capsys):
    p = _file(tmp_path / "patients.csv")
    (tmp_path / "model").mkdir()
    _refused(capsys, ["predict", "--model", tmp_path / "model", "--patients", p, "--out", p], p)


@bad_input("overwrite")
@pytest.mark.parametrize("option", ["--out", "--flags", "--patients-out"])
def test_timeseries_features_outputs_equal_to_source(tmp_path, capsys, option):
    src = _file(tmp_path / "long.csv")
    argv = ["timeseries", "features", src, "--format", "long", option, src]
    if option != "--out":
        argv += ["--out", tmp_path / "f.csv"]
    _refused(capsys, argv, src)


@bad_input("overwrite")
def test_evaluate_out_folder_holding_the_predictions(tmp_path, capsys):
    p = _file(tmp_path / "ev" / "decision_curve.csv")
    _refused(capsys, ["evaluate", "--predictions", p, "--outcome", "a", "--score", "b", "--out", p.parent], p)


@bad_input("overwrite")
def test_prs_score_out_folder_holding_a_target(tmp_path, capsys):
    t = _file(tmp_path / "o" / "scores.tsv")
    s = _file(tmp_path / "s.txt")
    _refused(capsys, ["prs", "score", "--target", t, "--scorefile", s, "--out", t.parent], t, s)


@bad_input("overwrite")
def test_pgx_call_out_folder_holding_the_vcf(tmp_path, capsys):
    v = _file(tmp_path / "o" / "calls.tsv")
    _refused(capsys, ["pgx", "call", v, "--out", v.parent], v)


@bad_input("overwrite")
def test_omics_pipeline_out_folder_holding_the_input(tmp_path, capsys):
    i = _file(tmp_path / "o" / "composition.csv")
    _refused(capsys, ["omics", "pipeline", "--input", i, "--batch-key", "b", "--out", i.parent], i)


@bad_input("overwrite")
def test_imaging_predict_out_equal_to_data(tmp_path, capsys):
    d = _file(tmp_path / "manifest.csv")
    (tmp_path / "model").mkdir()
    _refused(capsys, ["imaging", "predict", "--model", tmp_path / "model", "--data", d, "--out", d], d)


@bad_input("overwrite")
def test_out_equal_to_input_through_a_symlink(tmp_path, capsys):
    p = _file(tmp_path / "patients.csv")
    (tmp_path / "link.csv").symlink_to(p)
    (tmp_path / "model").mkdir()
    _refused(capsys, ["predict", "--model", tmp_path / "model", "--patients", p, "--out",
                      tmp_path / "link.csv"], p)


def _no_file_outside(root, before, *outs):
    from badinput import snapshot

    after = snapshot(root)
    assert all(after.get(k) == v for k, v in before.items()), "an input changed"
    stray = [k for k in after if k not in before
             and not any((root / k).resolve().is_relative_to(o.resolve()) for o in outs)]
    assert not stray, f"files outside the output folders: {stray}"


@bad_input("outside")
def test_cli_patient_reports_with_hostile_ids(clinical_files, tmp_path, capsys):
    from badinput import run_cli, snapshot

    from pmed.study import run_study

    bundle = run_study(write_study(tmp_path, models=("linear",)), tmp_path / "out").bundle_path
    work = tmp_path / "w" / "deep"
    work.mkdir(parents=True)
    new = pd.read_csv(clinical_files["new"])
    new = pd.concat([new] * 3, ignore_index=True).iloc[: len(BAD_IDS)]
    new["patient_id"] = BAD_IDS
    new.to_csv(work / "new.csv", index=False)
    before = snapshot(tmp_path)
    rc, text = run_cli(capsys, ["predict", "--model", bundle, "--patients", work / "new.csv",
                                "--out", work / "pred.csv", "--report", work / "reports"])
    assert rc == 0, text
    _no_file_outside(tmp_path, before, work / "reports", work / "pred.csv")
    reports = work / "reports"
    assert len(list(reports.glob("*.html"))) == len(BAD_IDS) and not list(reports.glob("*/"))
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "w" / "x.html").exists()


@bad_input("outside")
def test_evaluate_plots_named_after_hostile_model_names(tmp_path, capsys):
    import numpy as np
    from badinput import run_cli, snapshot

    rng = np.random.default_rng(0)
    names = ["../../x", "a/b", "m" * 300, "Case", "case"]
    n = 40
    rows = [pd.DataFrame({"model": m, "y": y, "score": y + rng.normal(0, 1, n)})
            for m in names for y in [rng.normal(0, 1, n)]]
    (tmp_path / "in").mkdir()
    pred = tmp_path / "in" / "predictions.csv"
    pd.concat(rows).to_csv(pred, index=False)
    out = tmp_path / "in" / "ev"
    before = snapshot(tmp_path)
    rc, text = run_cli(capsys, ["evaluate", "--task", "continuous", "--predictions", pred, "--outcome", "y",
                                "--score", "score", "--model-col", "model", "--bootstrap", "20", "--out", out])
    assert rc == 0, text
    _no_file_outside(tmp_path, before, out)
    pngs = sorted((out / "plots").glob("predicted_vs_observed_*.png"))
    assert len(pngs) == len(names)  # one plot per model, even Case/case on a case-blind file system
    assert all(len(p.name) < 255 for p in pngs) and not list((out / "plots").glob("*/"))
