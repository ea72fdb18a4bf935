"""``pmed privacy deidentify`` and ``pmed privacy check`` through their Typer app."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from privacy_fixtures import identifier_values, make_patients, sha256
from typer.testing import CliRunner

from pmed.cli.privacy import app
from pmed.errors import InputError, OptionError


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _all_output(result) -> str:
    try:
        return result.output + result.stderr
    except ValueError:  # an older click mixes stderr into output
        return result.output


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("données")
    df = make_patients(n=30, visits=2)
    src = folder / "patients é.csv"
    df.to_csv(src, index=False)
    return src, df


def test_deidentify_end_to_end(tmp_path, table):
    src, df = table
    before = sha256(src)
    key = tmp_path / "secret" / "project.key"
    out = tmp_path / "release ø" / "deid.csv"
    r = _run("deidentify", src, "--out", out, "--key-file", key, "--create-key", "--quasi", "sex",
             "--quasi", "age,zip", "--date-cols", "admit_date,discharge_date", "--k", "3")
    assert r.exit_code == 0, _all_output(r)
    assert sha256(src) == before and key.exists() and (os.stat(key).st_mode & 0o777) == 0o600
    text = _all_output(r)
    assert "created the key file" in text and "k_min" in text
    assert [v for v in identifier_values(df) if v in text] == []  # nothing of a patient printed
    report = json.loads((out.parent / "deid.deid-report.json").read_text())
    assert report["options"]["quasi"] == ["sex", "age", "zip"]
    assert report["options"]["date_cols"] == ["admit_date", "discharge_date"]
    assert report["risk"]["k"] == 3
    # a second run with the same key: the same pseudonyms
    out2 = tmp_path / "release2" / "deid.parquet"
    r2 = _run("deidentify", src, "--out", out2, "--key-file", key, "--report", tmp_path / "cols.csv")
    assert r2.exit_code == 0, _all_output(r2)
    assert pd.read_csv(out)["patient_id"].tolist() == pd.read_parquet(out2)["patient_id"].tolist()
    assert list(pd.read_csv(tmp_path / "cols.csv")["column"]) == list(df.columns)


def test_deidentify_key_errors(tmp_path, table):
    src, df = table
    o = tmp_path / "out" / "o.csv"
    r = _run("deidentify", src, "--out", o, "--key-file", tmp_path / "none.key")
    assert isinstance(r.exception, InputError) and "--create-key" in str(r.exception)
    assert not o.exists()
    empty = tmp_path / "empty.key"
    empty.write_bytes(b"")
    r = _run("deidentify", src, "--out", o, "--key-file", empty)
    assert isinstance(r.exception, InputError) and "empty" in str(r.exception)
    r = _run("deidentify", src, "--out", tmp_path / "rel" / "o.csv", "--key-file", tmp_path / "rel" / "k",
             "--create-key")
    assert isinstance(r.exception, OptionError) and "inside the output's folder" in str(r.exception)
    assert not (tmp_path / "rel").exists()
    readable = tmp_path / "k" / "shared.key"
    readable.parent.mkdir()
    readable.write_bytes(os.urandom(32))
    os.chmod(readable, 0o644)
    r = _run("deidentify", src, "--out", o, "--key-file", readable)
    assert r.exit_code == 0
    assert "chmod 600" in _all_output(r) and str(readable) in " ".join(_all_output(r).split())


def test_deidentify_usage_errors(tmp_path, table):
    src, _ = table
    r = _run("deidentify", src, "--out", tmp_path / "o.xlsx", "--key-file", tmp_path / "k")
    assert r.exit_code == 2
    r = _run("deidentify", src, "--out", tmp_path / "o.csv", "--key-file", tmp_path / "k", "--report", "r.txt")
    assert r.exit_code == 2
    r = _run("deidentify", src, "--out", tmp_path / "o.csv", "--key-file", tmp_path / "k", "--quasi", ",")
    assert r.exit_code == 2


def test_check_and_enforce(tmp_path, table):
    src, df = table
    before = sha256(src)
    out = tmp_path / "risk"
    r = _run("check", src, "--quasi", "age", "--quasi", "sex,zip", "--k", "3", "--l", "2", "--sensitive", "icd10",
             "--out", out, "--enforce")
    assert r.exit_code == 0, _all_output(r)
    assert sha256(src) == before
    rep = json.loads((out / "privacy.json").read_text())
    g = df.groupby(["age", "sex", "zip"], dropna=False)
    assert rep["risk"]["k_min"] == g.size().min() and rep["risk"]["n_classes"] == g.ngroups
    assert rep["risk"]["l_min"] == g["icd10"].nunique(dropna=False).min()
    released = pd.read_csv(out / "released.csv", dtype=str)
    rg = released.groupby(["age", "sex", "zip"], dropna=False)
    assert rg.size().min() >= 3 and rg["icd10"].nunique(dropna=False).min() >= 2
    assert "k_min" in r.output and "enforced" in r.output
    assert [v for v in identifier_values(df) if v in _all_output(r)] == []


def test_check_errors(tmp_path, table):
    src, _ = table
    r = _run("check", src, "--quasi", "age", "--k", "2", "--l", "2", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "--sensitive" in r.output
    r = _run("check", src, "--quasi", "age", "--k", "0", "--out", tmp_path / "o")
    assert r.exit_code == 2
    r = _run("check", src, "--quasi", "age", "--k", "1000", "--out", tmp_path / "o")
    assert isinstance(r.exception, OptionError) and "larger than the table" in str(r.exception)
    r = _run("check", src, "--quasi", "age,height", "--k", "2", "--out", tmp_path / "o")
    assert "'height'" in str(r.exception) and "'zip'" in str(r.exception)
    assert not (tmp_path / "o").exists()
