"""Bad inputs (issue #16) of the core commands: ``pmed run|predict|evaluate|validate|demo`` and the
readers under them (tables, text, schema, cohort, bundle, evaluation engine)."""

from __future__ import annotations

import functools
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from badinput import bad_input, refused, run_cli

from conftest import SCHEMA_YAML, make_clinical, write_study
from pmed.errors import OptionError

# ---------------------------------------------------------------------------------------------
# shared inputs: one small study output (linear model) for every case that needs a bundle
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A study run once: its folder, bundle, and the files it was trained on."""
    from pmed.study import run_study

    root = tmp_path_factory.mktemp("trained")
    make_clinical().to_csv(root / "patients.csv", index=False)
    (root / "schema.yaml").write_text(SCHEMA_YAML)
    result = run_study(write_study(root, models=("linear",)), root / "out")
    return {"root": root, "out": root / "out", "model": result.bundle_path,
            "oof": root / "out" / "oof_predictions.csv"}


def _inputs(tmp_path: Path, n: int = 60) -> dict[str, Path]:
    """patients.csv + schema.yaml + a study over them, in the test's folder."""
    make_clinical(n).to_csv(tmp_path / "patients.csv", index=False)
    (tmp_path / "schema.yaml").write_text(SCHEMA_YAML)
    return {"patients": tmp_path / "patients.csv", "schema": tmp_path / "schema.yaml",
            "study": write_study(tmp_path, models=("linear",))}


def _new_patients(path: Path, n: int = 4, seed: int = 99) -> Path:
    new = make_clinical(n, seed=seed).drop(columns=["event", "sbp"])
    new["patient_id"] = [f"N{i}" for i in range(n)]
    new.to_csv(path, index=False)
    return path


def _model(trained, tmp_path: Path) -> Path:
    """A copy of the bundle in the test's folder (an input the harness checks is unchanged)."""
    return Path(shutil.copytree(trained["model"], tmp_path / "model"))


# ---------------------------------------------------------------------------------------------
# silent wrong answers
# ---------------------------------------------------------------------------------------------

@bad_input("silent")
def test_duplicate_column_names_are_refused_not_renamed(tmp_path, capsys):
    # pandas would read the second 'age' as 'age.1' and the schema check would see one 'age'
    text = tmp_path / "dup.csv"
    rows = make_clinical(10).to_csv(index=False).splitlines()
    rows[0] = rows[0].replace("bmi", "age")
    text.write_text("\n".join(rows) + "\n")
    head = refused(capsys, tmp_path, ["validate", text], code=2, says=r"duplicate column names.*'age' \(columns 2, 4\)")
    assert "dup.csv" in head and "line 1" in head


@bad_input("silent")
def test_duplicate_column_names_in_a_parquet_file(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array(["P1", "P2"]), pa.array([1.0, 2.0]), pa.array([3.0, 4.0])],
                            names=["patient_id", "crp", "crp"]), tmp_path / "p.parquet")
    refused(capsys, tmp_path, ["validate", tmp_path / "p.parquet"], code=2, says=r"duplicate column names.*'crp'")


@bad_input("silent")
def test_duplicate_score_columns_in_predictions(trained, tmp_path, capsys):
    rows = trained["oof"].read_text().splitlines()
    rows[0] = rows[0].replace("outcome", "prediction")  # two 'prediction' columns: which one is scored?
    (tmp_path / "pred.csv").write_text("\n".join(rows) + "\n")
    refused(capsys, tmp_path, ["evaluate", "--predictions", tmp_path / "pred.csv", "--outcome", "outcome",
                               "--score", "prediction", "--out", tmp_path / "ev"],
            code=2, says=r"duplicate column names.*'prediction'", out=tmp_path / "ev")


@bad_input("silent")
@pytest.mark.parametrize("name", ["f.xlsx", "predictions", "f.parquet.gz"])
def test_predict_out_with_an_extension_it_does_not_write(trained, tmp_path, capsys, name):
    # refused while parsing: nothing read, nothing written (no CSV text under an Excel name)
    model = _model(trained, tmp_path)
    new = _new_patients(tmp_path / "new.csv")
    refused(capsys, tmp_path, ["predict", "-m", model, "-p", new, "--out", tmp_path / name],
            code=2, says=r"--out.*cannot write a table.*\.csv, \.tsv.*\.parquet")
    assert not (tmp_path / name).exists()


@bad_input("silent")
def test_write_table_refuses_what_it_cannot_write(tmp_path):
    from pmed.io import write_table

    with pytest.raises(OptionError, match=r"cannot write a table as '\.xlsx'"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.xlsx")
    assert not list(tmp_path.iterdir())
    back = pd.read_csv(write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.tsv.gz", index=False), sep="\t")
    assert back["a"].tolist() == [1, 2]


# ---------------------------------------------------------------------------------------------
# option values: refused while parsing (exit 2), and by the API (OptionError)
# ---------------------------------------------------------------------------------------------

@bad_input("options")
@pytest.mark.parametrize(("args", "says"), [
    (["--min-group-size", "-5"], "--min-group-size"),
    (["--threshold", "1.5"], "--threshold"),
    (["--threshold", "0"], "--threshold"),
    (["--task", "xyz"], "--task"),
    (["--mitigate", "fair"], "--mitigate"),
    (["--seed", "-1"], "--seed"),  # was a NumPy traceback
    (["--seed", str(2**32)], "--seed"),
    (["--bootstrap", "-1"], "--bootstrap"),
    (["--bootstrap", "100000000"], "--bootstrap"),  # was hours of resampling
    (["--repeat", "-1"], "--repeat"),
    (["--group", "sex", "--group", "sex"], "given twice"),  # was a pandas traceback
    (["--group", "outcome"], "also the outcome"),
])
def test_evaluate_option_values(trained, tmp_path, capsys, args, says):
    pred = pd.read_csv(trained["oof"]).assign(sex=lambda d: np.where(np.arange(len(d)) % 2, "F", "M"))
    pred.to_csv(tmp_path / "pred.csv", index=False)
    refused(capsys, tmp_path, ["evaluate", "--predictions", tmp_path / "pred.csv", "--outcome", "outcome",
                               "--score", "prediction", "--out", tmp_path / "ev", *args],
            code=2, says=says, out=tmp_path / "ev")
    assert not (tmp_path / "ev").exists()


@bad_input("options")
@pytest.mark.parametrize(("args", "says"), [
    (["--n-patients", "5"], "--n-patients"), (["--n-patients", "-1"], "--n-patients"),
    (["--seed", "-1"], "--seed")])
def test_demo_option_values(tmp_path, capsys, args, says):
    refused(capsys, tmp_path, ["demo", "--out", tmp_path / "d", *args], code=2, says=says, out=tmp_path / "d")
    assert not (tmp_path / "d").exists()


@bad_input("options")
@pytest.mark.parametrize(("line", "key"), [
    ("evaluation: {folds: 1}", "evaluation.folds"), ("evaluation: {threshold: 1.5}", "evaluation.threshold"),
    ("evaluation: {min_group_size: -5}", "evaluation.min_group_size"), ("seed: -1", "seed")])
def test_run_study_values_in_the_yaml(tmp_path, capsys, line, key):
    f = _inputs(tmp_path)
    text = f["study"].read_text().replace("evaluation: {folds: 4, repeats: 1, bootstrap: 50, "
                                          "coefficient_bootstrap: 0}\nseed: 0\n", line + "\n")
    f["study"].write_text(text)
    refused(capsys, tmp_path, ["run", f["study"], "--out", tmp_path / "out"], code=6, says=key.replace(".", r"\."),
            out=tmp_path / "out")


@bad_input("options")
def test_api_refuses_the_same_values(tmp_path, trained):
    from pmed.evaluate import evaluate_predictions
    from pmed.study import run_study
    from pmed.study.spec import load_study

    df = pd.read_csv(trained["oof"])
    for kw in ({"min_group_size": -5}, {"thresholds": [1.5]}, {"task": "xyz"}, {"n_boot": -1}, {"seed": -1},
               {"mitigate": "fair"}, {"groups": ["outcome"]}):
        with pytest.raises(OptionError):
            evaluate_predictions(df, outcome="outcome", score="prediction", **kw)
    f = _inputs(tmp_path)
    study = load_study(f["study"])
    study.evaluation.folds = 1  # set after validation: checked again by run_study
    with pytest.raises(OptionError, match=r"study key evaluation\.folds"):
        run_study(study, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# identifiers and long values in messages
# ---------------------------------------------------------------------------------------------

@bad_input("identifiers")
def test_duplicate_patient_ids_are_counted_not_named(tmp_path, capsys):
    df = make_clinical(20)
    df.loc[7, "patient_id"] = "SECRET-ID-0001"
    df.loc[12, "patient_id"] = "SECRET-ID-0001"
    df.to_csv(tmp_path / "p.csv", index=False)
    (tmp_path / "schema.yaml").write_text(SCHEMA_YAML)
    rc, text = run_cli(capsys, ["validate", tmp_path / "p.csv", "--schema", tmp_path / "schema.yaml"])
    assert rc == 4
    assert "1 patient ID repeated, at lines 9, 14" in text and "SECRET" not in text


@bad_input("identifiers")
def test_a_10000_character_category_value_is_cut(tmp_path, capsys):
    df = make_clinical(20)
    long = "Z" * 10_000
    df["sex"] = df["sex"].astype(object)
    df.loc[3, "sex"] = long
    df.to_csv(tmp_path / "p.csv", index=False)
    (tmp_path / "schema.yaml").write_text(SCHEMA_YAML)
    rc, text = run_cli(capsys, ["validate", tmp_path / "p.csv", "--schema", tmp_path / "schema.yaml"])
    assert rc == 4
    assert all(len(line) < 300 for line in text.splitlines()), max(map(len, text.splitlines()))
    assert "unknown categories 'ZZZZ" in text and "(10000 characters) at lines 5" in text
    assert "Z" * 100 not in text


@bad_input("identifiers")
def test_block_missing_patients_counts_rows_not_ids(tmp_path, capsys):
    f = _inputs(tmp_path, n=40)
    pd.DataFrame({"patient_id": [f"P{i:04d}" for i in range(37)], "prs_x": np.linspace(0, 1, 37)}).to_csv(
        tmp_path / "prs.csv", index=False)
    f["study"].write_text(f["study"].read_text().replace("  outcomes: [sbp]\n", "  outcomes: [sbp]\n  blocks:\n"
                                                         "    prs: prs.csv\n"))
    rc, text = run_cli(capsys, ["run", f["study"], "--out", tmp_path / "out"])
    assert rc == 5 and "Traceback" not in text
    assert text.strip().startswith("error ") and "prs.csv" in text.strip().splitlines()[0]
    assert "3 of the cohort's 40 patients are missing from block 'prs' (patient table rows 38, 39, 40)" in text
    assert not any(pid in text for pid in ("P0037", "P0038", "P0039"))
    assert "allow" not in text  # the fix is said the command-line way
    assert not (tmp_path / "out").exists()


@bad_input("identifiers")
def test_bundle_refusals_give_rows_not_patient_ids(trained):
    from pmed.errors import ValidationError
    from pmed.study import load_bundle
    from pmed.study.predict import new_patient_features

    bundle = load_bundle(trained["model"])
    new = make_clinical(5, seed=3).drop(columns=["event", "sbp"])
    new["patient_id"] = [f"SECRET{i}" for i in range(5)]
    X = new_patient_features(bundle, new)
    X["age"] = X["age"].astype(object)
    X.iloc[2, X.columns.get_loc("age")] = "Q" * 5000
    with pytest.raises(ValidationError) as e:
        bundle.check_features(X)
    msg = str(e.value)
    assert "column 'age': non-numeric values at rows 3" in msg
    assert "SECRET" not in msg and "Q" * 50 not in msg


# ---------------------------------------------------------------------------------------------
# misleading diagnoses
# ---------------------------------------------------------------------------------------------

@bad_input("diagnosis")
@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_bom_at_the_start_is_read_as_the_id_column(tmp_path, capsys, suffix):
    df = make_clinical(12)
    path = tmp_path / f"p{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False, sep="\t" if suffix == ".tsv" else ",").encode())
    (tmp_path / "schema.yaml").write_text(SCHEMA_YAML)
    rc, text = run_cli(capsys, ["validate", path, "--schema", tmp_path / "schema.yaml"])
    assert rc == 0 and "ok: 12 patients" in text, text
    from pmed.io import read_table

    assert read_table(path).index.name == "patient_id"


@bad_input("diagnosis")
def test_a_header_only_patients_file_says_no_rows(tmp_path, capsys):
    (tmp_path / "p.csv").write_text(make_clinical(5).to_csv(index=False).splitlines()[0] + "\n")
    refused(capsys, tmp_path, ["validate", tmp_path / "p.csv"], code=2, says=r"header \(9 columns\) but no rows")


@bad_input("diagnosis")
def test_an_empty_patients_file_says_empty(tmp_path, capsys):
    (tmp_path / "p.csv").write_text("")
    refused(capsys, tmp_path, ["validate", tmp_path / "p.csv"], code=2, says=r"is empty")


@bad_input("diagnosis")
def test_a_utf16_table_is_named(tmp_path, capsys):
    (tmp_path / "p.csv").write_bytes(make_clinical(5).to_csv(index=False).encode("utf-16"))
    refused(capsys, tmp_path, ["validate", tmp_path / "p.csv"], code=2, says=r"UTF-16")


# ---------------------------------------------------------------------------------------------
# broken files
# ---------------------------------------------------------------------------------------------

def _gz_cut(tmp_path: Path) -> Path:
    data = gzip.compress(make_clinical(200).to_csv(index=False).encode())
    path = tmp_path / "patients.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


@bad_input("broken")
def test_truncated_gz_patients_file(tmp_path, capsys):
    path = _gz_cut(tmp_path)
    head = refused(capsys, tmp_path, ["validate", path], code=2, says=r"truncated or corrupt")
    assert "patients.csv.gz" in head
    # the same through a study: one line naming the file, exit 2 (never 130, never a traceback)
    (tmp_path / "schema.yaml").write_text(SCHEMA_YAML)
    study = write_study(tmp_path, models=("linear",))
    study.write_text(study.read_text().replace("patients.csv", "patients.csv.gz"))
    refused(capsys, tmp_path, ["run", study, "--out", tmp_path / "out"], code=2,
            says=r"patients\.csv\.gz.*truncated or corrupt", out=tmp_path / "out")


@bad_input("broken")
def test_corrupt_gz_patients_file(tmp_path, capsys):
    data = bytearray(gzip.compress(make_clinical(200).to_csv(index=False).encode()))
    data[100:200] = bytes(b ^ 0xFF for b in data[100:200])  # was a zlib.error traceback
    (tmp_path / "p.csv.gz").write_bytes(bytes(data))
    refused(capsys, tmp_path, ["validate", tmp_path / "p.csv.gz"], code=2, says=r"truncated or corrupt \(zlib")


@bad_input("broken")
def test_open_text_names_a_truncated_gzip(tmp_path):
    from pmed.errors import InputError
    from pmed.io import open_text

    path = _gz_cut(tmp_path)
    with pytest.raises(InputError, match=r"patients\.csv\.gz: compressed file is truncated or corrupt"):
        with open_text(path) as fh:
            fh.read()
    whole = tmp_path / "whole.csv.gz"
    whole.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with open_text(whole) as fh:  # an intact file reads, and rewinds, as before
        first = fh.readline()
        fh.seek(0)
        assert fh.read() == "a,b\n1,2\n" and first == "a,b\n"


@bad_input("broken")
@pytest.mark.parametrize("exc", [EOFError("Compressed file ended before the end-of-stream marker was reached"),
                                 __import__("zlib").error("Error -3 while decompressing data")])
def test_a_decompression_error_that_escapes_a_reader_is_exit_2_not_130(monkeypatch, capsys, exc):
    from pmed.cli import app

    info = next(c for c in app.registered_commands if c.callback.__name__ == "version")

    @functools.wraps(info.callback)
    def body():
        raise exc

    monkeypatch.setattr(info, "callback", body)
    rc, text = run_cli(capsys, ["version"])
    assert rc == 2 and "Traceback" not in text and "interrupted" not in text
    assert text.startswith("error: an input file is truncated or corrupt")


# ---------------------------------------------------------------------------------------------
# inputs overwritten: an input inside an output folder that is replaced whole
# ---------------------------------------------------------------------------------------------

@bad_input("overwrite")
def test_run_with_the_patients_file_inside_out(trained, tmp_path, capsys):
    out = Path(shutil.copytree(trained["out"], tmp_path / "out"))  # an earlier run: may be replaced
    f = _inputs(out)  # ... but patients.csv, schema.yaml and the study lie inside it
    for name in ("patients.csv", "schema.yaml"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    study = tmp_path / "study.yaml"
    study.write_text(f["study"].read_text().replace("patients: patients.csv", "patients: out/patients.csv"))
    refused(capsys, tmp_path, ["run", study, "--out", out], code=2,
            says=r"input 'patients\.csv' lies inside the output folder")
    assert (out / "patients.csv").exists()


@bad_input("overwrite")
def test_run_with_the_study_file_inside_out(trained, tmp_path, capsys):
    out = Path(shutil.copytree(trained["out"], tmp_path / "out"))
    _inputs(tmp_path)
    study = out / "study.yaml"
    study.write_text(write_study(tmp_path, models=("linear",)).read_text()
                     .replace("patients.csv", "../patients.csv").replace("schema.yaml", "../schema.yaml"))
    refused(capsys, tmp_path, ["run", study, "--out", out], code=2, says=r"input 'study\.yaml' lies inside")


@bad_input("overwrite")
def test_predict_report_folder_holding_the_patients(trained, tmp_path, capsys):
    model = _model(trained, tmp_path)
    (tmp_path / "rep").mkdir()
    new = _new_patients(tmp_path / "rep" / "new.csv")
    refused(capsys, tmp_path, ["predict", "-m", model, "-p", new, "--out", tmp_path / "p.csv", "--report",
                               tmp_path / "rep"], code=2, says=r"input 'new\.csv' lies inside the report folder",
            out=tmp_path / "p.csv")


@bad_input("overwrite")
@pytest.mark.parametrize("where", ["inside", "equal"])
def test_predict_report_folder_in_or_at_the_model(trained, tmp_path, capsys, where):
    model = _model(trained, tmp_path)
    new = _new_patients(tmp_path / "new.csv")
    report = model / "reports" if where == "inside" else model
    says = r"report folder lies inside the input 'model'"
    refused(capsys, tmp_path, ["predict", "-m", model, "-p", new, "--out", tmp_path / "p.csv", "--report", report],
            code=2, says=says, out=tmp_path / "p.csv")


@bad_input("overwrite")
def test_predict_out_inside_the_report_folder(trained, tmp_path, capsys):
    model = _model(trained, tmp_path)
    new = _new_patients(tmp_path / "new.csv")
    refused(capsys, tmp_path, ["predict", "-m", model, "-p", new, "--out", tmp_path / "rep" / "p.csv",
                               "--report", tmp_path / "rep"], code=2,
            says=r"predictions file \(--out\) lies inside the report folder")
    assert not (tmp_path / "rep").exists()


# ---------------------------------------------------------------------------------------------
# output folders that mix runs
# ---------------------------------------------------------------------------------------------

@bad_input("mixed")
def test_predict_report_rerun_leaves_no_stale_report(trained, tmp_path, capsys):
    model = _model(trained, tmp_path)
    rep = tmp_path / "rep"
    rc, text = run_cli(capsys, ["predict", "-m", model, "-p", _new_patients(tmp_path / "new.csv", n=4),
                                "--out", tmp_path / "p.csv", "--report", rep])
    assert rc == 0, text
    assert sorted(p.name for p in rep.iterdir()) == ["N0.html", "N1.html", "N2.html", "N3.html", "index.csv"]
    rc, text = run_cli(capsys, ["predict", "-m", model, "-p", _new_patients(tmp_path / "new.csv", n=2),
                                "--out", tmp_path / "p.csv", "--report", rep])
    assert rc == 0, text
    # N2 and N3 are no longer in the file: their reports are gone, not left beside the new ones
    assert sorted(p.name for p in rep.iterdir()) == ["N0.html", "N1.html", "index.csv"]
    assert pd.read_csv(rep / "index.csv")["patient_id"].tolist() == ["N0", "N1"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep.")]


@bad_input("mixed")
def test_predict_report_into_a_foreign_folder(trained, tmp_path, capsys):
    model = _model(trained, tmp_path)
    new = _new_patients(tmp_path / "new.csv")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    refused(capsys, tmp_path, ["predict", "-m", model, "-p", new, "--out", tmp_path / "p.csv", "--report",
                               tmp_path / "docs"], code=2, says=r"not empty and holds no earlier patient reports",
            out=tmp_path / "p.csv")


@bad_input("mixed")
def test_evaluate_rerun_leaves_no_stale_files(trained, tmp_path, capsys):
    ev = tmp_path / "ev"
    argv = ["evaluate", "--predictions", trained["oof"], "--outcome", "outcome", "--score", "prediction",
            "--bootstrap", "20", "--out", ev]
    assert run_cli(capsys, argv)[0] == 0
    (ev / "from_an_earlier_run.csv").write_text("x\n")
    (ev / "plots" / "old.png").write_bytes(b"png")
    rc, text = run_cli(capsys, argv)
    assert rc == 0, text
    assert not (ev / "from_an_earlier_run.csv").exists() and not (ev / "plots" / "old.png").exists()
    assert json.loads((ev / "metrics.json").read_text())["schema"] == "pmed.evaluation"


@bad_input("mixed")
def test_evaluate_into_a_foreign_folder(trained, tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    refused(capsys, tmp_path, ["evaluate", "--predictions", trained["oof"], "--outcome", "outcome", "--score",
                               "prediction", "--out", tmp_path / "docs"], code=2,
            says=r"not empty and does not hold an earlier evaluation")


@bad_input("mixed")
def test_demo_into_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    refused(capsys, tmp_path, ["demo", "--out", tmp_path / "docs"], code=2,
            says=r"not empty and does not hold an earlier pmed demo output")


@bad_input("mixed")
def test_a_failed_demo_restores_the_earlier_one(tmp_path, monkeypatch):
    import pmed.demo as demo

    out = tmp_path / "d"
    out.mkdir()
    (out / demo.DEMO_MARKER).write_text("x")
    (out / "study.yaml").write_text("# Written by `pmed demo`\nearlier")

    def fails(out, **kw):
        (out / "study.yaml").write_text("half")
        (out / "results").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_demo", fails)
    with pytest.raises(KeyboardInterrupt):
        demo.run_demo(out, n_patients=demo.MIN_PATIENTS)
    assert (out / "study.yaml").read_text().endswith("earlier") and not (out / "results").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]

    def works(out, **kw):
        (out / "study.yaml").write_text("# Written by `pmed demo`\nnew")
        return {}

    monkeypatch.setattr(demo, "_demo", works)
    demo.run_demo(out, n_patients=demo.MIN_PATIENTS)
    assert (out / "study.yaml").read_text().endswith("new") and (out / demo.DEMO_MARKER).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


# ---------------------------------------------------------------------------------------------
# integrity
# ---------------------------------------------------------------------------------------------

@bad_input("integrity")
def test_predict_refuses_a_one_byte_edit_of_the_manifest(trained, tmp_path, capsys):
    model = _model(trained, tmp_path)
    mf = model / "manifest.json"
    text = mf.read_text()
    assert '"threshold": 0.5' in text
    mf.write_text(text.replace('"threshold": 0.5', '"threshold": 0.9', 1))  # one byte
    new = _new_patients(tmp_path / "new.csv")
    refused(capsys, tmp_path, ["predict", "-m", model, "-p", new, "--out", tmp_path / "p.csv"], code=7,
            says=r"manifest\.json does not match the SHA-256", out=tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()


@bad_input("integrity")
def test_an_interrupted_cli_run_leaves_the_previous_output(trained, tmp_path, capsys, monkeypatch):
    import pmed.study.run as run_mod

    out = Path(shutil.copytree(trained["out"], tmp_path / "out"))
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    f = _inputs(tmp_path)

    def interrupted(*a, **k):  # Ctrl-C while the plots are drawn: after the bundle, before the end
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "_write_plots", interrupted)
    rc, text = run_cli(capsys, ["run", f["study"], "--out", out])
    assert rc == 130 and "interrupted" in text
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no half folder left


@bad_input("identifiers")
def test_shorten_cuts_long_values_and_keeps_short_ones():
    from pmed.errors import shorten

    assert shorten("M ") == "'M '"  # a trailing space stays visible
    assert shorten(2.5) == "2.5" and shorten(np.int64(3)) == "3"
    long = shorten("x" * 10_000)
    assert long == "'" + "x" * 40 + "…' (10000 characters)"
    assert len(shorten("y" * 10_000, 10)) < 40
