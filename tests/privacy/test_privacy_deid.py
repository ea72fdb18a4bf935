"""De-identification of tables: pseudonyms, identifiers, dates, ages, postal codes, keys."""

from __future__ import annotations

import json
import os
import stat
import warnings

import numpy as np
import pandas as pd
import pytest
from privacy_fixtures import LEAK_PATTERNS, identifier_values, make_patients, sha256

from pmed.errors import InputError, NotFoundError, OptionError, PmedWarning
from pmed.privacy import (
    MAX_SHIFT_DAYS,
    classify_column,
    create_key,
    date_offset,
    deidentify_table,
    load_key,
    pseudonym,
    truncate_postal,
)


@pytest.fixture()
def key(tmp_path):
    return create_key(tmp_path / "keys" / "project.key")


@pytest.fixture(scope="module")
def patients():
    return make_patients()


def _deid(df, key_file, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PmedWarning)  # a fresh key is owner-only: no warning
        return deidentify_table(df, key_file=key_file, **kw)


# -- pseudonyms -----------------------------------------------------------------------------

def test_pseudonyms_stable_across_runs_and_files(tmp_path, key, patients):
    a = patients.iloc[:60]
    b = patients.iloc[30:].sample(frac=1, random_state=1)  # another file, other order, shared patients
    ra1, ra2, rb = _deid(a, key), _deid(a, key), _deid(b, key)
    pd.testing.assert_frame_equal(ra1.data, ra2.data)  # same run twice: same output
    map_a = dict(zip(a["patient_id"], ra1.data["patient_id"], strict=True))
    map_b = dict(zip(b["patient_id"], rb.data["patient_id"], strict=True))
    shared = set(map_a) & set(map_b)
    assert shared and all(map_a[p] == map_b[p] for p in shared)
    assert len(set(map_a.values())) == len(map_a)  # one pseudonym per patient, no collision
    assert all(v.startswith("psn-") and len(v) == 24 for v in map_a.values())


def test_other_key_gives_other_pseudonyms(tmp_path, key, patients):
    other = create_key(tmp_path / "keys" / "other.key")
    r1, r2 = _deid(patients, key), _deid(patients, other)
    assert not set(r1.data["patient_id"]) & set(r2.data["patient_id"])
    assert r1.key["id"] != r2.key["id"]
    k1, k2 = load_key(key), load_key(other)
    assert pseudonym(k1, "X1") == pseudonym(k1, " X1 ") != pseudonym(k2, "X1")
    assert pseudonym(k1, 12.0) == pseudonym(k1, "12")


# -- identifiers ------------------------------------------------------------------------------

def test_no_identifier_left_in_export(tmp_path, key, patients):
    folder = tmp_path / "données patients ü"  # non-ASCII path, non-ASCII names in the table
    folder.mkdir()
    src = folder / "cohorte_été.csv"
    patients.to_csv(src, index=False)
    before = sha256(src)
    out = tmp_path / "export ø" / "désidentifié.csv"
    res = _deid(src, key, out=out)
    files = res.write(out)
    assert sha256(src) == before  # the input is never modified
    text = files["table"].read_text(encoding="utf-8")
    for name, pat in LEAK_PATTERNS.items():
        assert not pat.search(text), name
    leaked = [v for v in identifier_values(patients) if v in text]
    assert leaked == []
    removed = {c["column"] for c in res.columns if c["action"] == "removed"}
    assert removed == {"full_name", "e-mail", "phone", "ssn", "nhs_number", "address", "contact", "ref", "kin",
                       "notes"}
    by = {c["column"]: c for c in res.columns}
    assert by["contact"]["rule"] == "email" and by["ref"]["rule"] == "mrn" and by["kin"]["rule"] == "person_name"
    assert by["notes"]["rule"] == "phone" and by["nhs_number"]["rule"] == "national_id"  # first rule found
    assert by["icd10"]["action"] == by["crp"]["action"] == by["sex"]["action"] == "kept"
    # the report: beside the table, every input column listed once, no patient value in it
    report = json.loads(files["report"].read_text(encoding="utf-8"))
    assert files["report"].name == "désidentifié.deid-report.json"
    assert [c["column"] for c in report["columns"]] == list(patients.columns)
    rtext = files["report"].read_text(encoding="utf-8")
    assert [v for v in identifier_values(patients) if v in rtext] == []
    assert report["key"]["id"] == res.key["id"] and "created" in report["key"]


def test_report_as_csv(tmp_path, key, patients):
    res = _deid(patients.iloc[:9], key)
    files = res.write(tmp_path / "out" / "t.tsv", report=tmp_path / "out" / "cols.csv")
    rep = pd.read_csv(files["report"])
    assert list(rep["column"]) == list(patients.columns)
    assert set(rep["action"]) == {"pseudonymized", "removed", "generalized", "date-shifted", "kept"}
    assert pd.read_csv(files["table"], sep="\t").shape[0] == 9


@pytest.mark.parametrize("value, rule", [
    (["ana@example.org", "x", "y"], "email"), (["123-45-6789", "a", "b"], "ssn"),
    (["+44 20 7946 0958", "-", "-"], "phone"), (["(555) 123-4567", "-", "-"], "phone"),
    (["MRN 0045123", "n/a", "n/a"], "mrn"), (["see https://x.org/p/1", "-", "-"], "url"),
    (["10.0.12.7", "-", "-"], "ip"),
])
def test_value_patterns_mark_unnamed_columns(value, rule):
    kind = classify_column("misc", pd.Series(value * 4))
    assert (kind.kind, kind.rule) == ("identifier", rule)
    assert kind.n_matched == 4


def test_value_rules_leave_clinical_columns():
    rng = np.random.default_rng(0)
    n = 100
    keep = {"crp": rng.lognormal(size=n).round(2).astype(str), "sbp": rng.integers(90, 180, n).astype(str),
            "smoking": rng.choice(["Never Smoker", "Former Smoker", "Current Smoker"], n),
            "icd10": rng.choice(["E11.9", "I10", "C50.9"], n), "site_id": rng.choice(["A", "B"], n),
            "bp": rng.choice(["120/80", "135/90"], n), "drug": rng.choice(["Metformin", "Atorvastatin"], n)}
    for name, values in keep.items():
        assert classify_column(name, pd.Series(values)).kind == "other", name
    assert classify_column("visit", pd.Series(["2020-01-05"] * 5)).kind == "date"
    notes = pd.Series(["Patient reports mild chest pain after climbing the stairs on Monday morning"] * 5)
    assert classify_column("comment", notes).rule == "free_text"
    from privacy_fixtures import nhs_number

    nhs = pd.Series([nhs_number(rng).replace(" ", "") for _ in range(30)])
    assert classify_column("code", nhs).rule == "nhs_number"
    assert classify_column("record_id", pd.Series([f"R{i}" for i in range(30)])).rule == "unique_number"


# -- dates, ages, postal codes ----------------------------------------------------------------

def test_date_intervals_kept_within_each_patient(tmp_path, key, patients):
    res = _deid(patients, key)
    out, inp = res.data, patients
    for col in ("admit_date", "discharge_date", "dob"):
        assert {c["action"] for c in res.columns if c["column"] == col} == {"date-shifted"}
    shift = (pd.to_datetime(out["admit_date"]) - pd.to_datetime(inp["admit_date"])).dt.days
    assert shift.abs().between(1, MAX_SHIFT_DAYS).all()
    per_patient = shift.groupby(inp["patient_id"]).nunique()
    assert (per_patient == 1).all()  # one offset per patient …
    assert shift.groupby(inp["patient_id"]).first().nunique() > 10  # … different between patients
    stay_in = (pd.to_datetime(inp["discharge_date"]) - pd.to_datetime(inp["admit_date"])).dt.days
    stay_out = (pd.to_datetime(out["discharge_date"]) - pd.to_datetime(out["admit_date"])).dt.days
    assert (stay_in == stay_out).all()
    # the same patient in another file: the same offset (the key and the ID decide it)
    k = load_key(key)
    pid = inp["patient_id"].iloc[0]
    assert shift.iloc[0] == date_offset(k, pid)
    other = _deid(inp[inp["patient_id"] == pid][["patient_id", "admit_date"]], key)
    assert (pd.to_datetime(other.data["admit_date"]) - pd.to_datetime(inp.loc[inp["patient_id"] == pid,
                                                                              "admit_date"].to_numpy())
            ).dt.days.eq(shift.iloc[0]).all()


def test_date_offsets_spread_over_the_range():
    k = b"k" * 32
    offs = np.array([date_offset(k, f"P{i}") for i in range(3000)])
    assert offs.min() == -MAX_SHIFT_DAYS and offs.max() == MAX_SHIFT_DAYS and 0 not in offs


def test_dates_without_patient_id_are_cut_to_the_year(key):
    df = pd.DataFrame({"visit_date": ["2020-03-04", "2021-12-31", None], "value": [1, 2, 3]})
    res = _deid(df, key)
    assert list(res.data["visit_date"]) == ["2020", "2021", None]
    assert res.columns[0]["action"] == "generalized"


def test_explicit_date_cols_and_unparsed_dates_by_line(tmp_path, key):
    src = tmp_path / "t.csv"
    pd.DataFrame({"patient_id": ["a", "b", "c"], "event": ["2020-01-01", "not a date", "2020-02-01"]}).to_csv(
        src, index=False)
    res = _deid(src, key, date_cols="event")
    e = res.columns[1]
    assert e["action"] == "date-shifted" and e["n_unparsed_removed"] == 1 and e["unparsed_at"] == "lines 3"
    assert res.data["event"].isna().tolist() == [False, True, False]


def test_ages_over_89_grouped(key):
    df = pd.DataFrame({"patient_id": list("abcde"), "age": [34, 89, 90, 101, None]})
    res = _deid(df, key)
    assert res.data["age"].tolist()[:4] == ["34", "89", "90+", "90+"] and pd.isna(res.data["age"].iloc[4])
    assert res.columns[1]["n_grouped_90_plus"] == 2
    text = pd.DataFrame({"patient_id": list("ab"), "age_at_diagnosis": ["45", "93 years"]})
    assert _deid(text, key).data["age_at_diagnosis"].tolist() == ["45", "90+"]


def test_birth_date_of_patients_90_and_over_removed(key):
    df = pd.DataFrame({"patient_id": ["a", "b"], "dob": ["1920-01-01", "1970-06-01"],
                       "admit_date": ["2015-01-01", "2015-01-01"]})
    res = _deid(df, key)
    assert pd.isna(res.data["dob"].iloc[0]) and pd.notna(res.data["dob"].iloc[1])
    assert res.columns[1]["n_removed_age_90_plus"] == 1


@pytest.mark.parametrize("value, expected", [
    ("02134", ("021", "us_zip3")), ("02134-1234", ("021", "us_zip3")), ("021341234", ("021", "us_zip3")),
    (2134, ("021", "us_zip3")), ("03601", ("000", "us_zip3_restricted")), ("89301", ("000", "us_zip3_restricted")),
    ("SW1A 1AA", ("SW1A", "uk_outward")), ("m1 1ae", ("M1", "uk_outward")), ("EC1A", ("EC1A", "uk_outward")),
    ("K1A 0B1", ("K1A", "ca_fsa")), ("12-34", (None, "unknown")),
])
def test_postal_truncation(value, expected):
    assert truncate_postal(value) == expected


def test_zip_column_in_table_and_parquet(tmp_path, key):
    df = pd.DataFrame({"patient_id": list("abcd"), "zip_code": ["02134", "05901", "SW1A 1AA", "bad"]})
    res = _deid(df, key)
    assert res.data["zip_code"].tolist() == ["021", "000", "SW1A", None]
    assert res.columns[1]["n_unknown"] == 1 and res.columns[1]["unknown_removed_at"] == "rows 4"
    src = tmp_path / "z.parquet"
    pd.DataFrame({"patient_id": [1, 2], "zip": [2134, 94110], "age": [95.0, 40.0]}).to_parquet(src)
    out = tmp_path / "o" / "z.parquet"
    _deid(src, key).write(out)
    back = pd.read_parquet(out)
    assert back["zip"].tolist() == ["021", "941"] and back["age"].tolist() == ["90+", "40"]


# -- keys and bad input -----------------------------------------------------------------------

def test_created_key_is_32_random_owner_only_bytes(tmp_path):
    p = create_key(tmp_path / "k")
    assert len(p.read_bytes()) == 32 and stat.S_IMODE(p.stat().st_mode) == 0o600
    assert create_key(tmp_path / "k2").read_bytes() != p.read_bytes()
    before = p.read_bytes()
    with pytest.raises(InputError, match="never replaces"):
        create_key(p)
    assert p.read_bytes() == before


def test_key_missing_names_create_key(tmp_path, patients):
    with pytest.raises(InputError) as e:
        deidentify_table(patients, key_file=tmp_path / "absent.key")
    assert "not found" in str(e.value) and "--create-key" in e.value.fix
    assert not (tmp_path / "absent.key").exists()
    res = deidentify_table(patients.iloc[:3], key_file=tmp_path / "absent.key", create_key=True)
    assert res.key["created"] and (tmp_path / "absent.key").exists()
    again = deidentify_table(patients.iloc[:3], key_file=tmp_path / "absent.key", create_key=True)
    assert not again.key["created"] and again.data.equals(res.data)  # an existing key is used, not replaced


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"short", "fewer than")])
def test_key_empty_or_short(tmp_path, patients, content, match):
    p = tmp_path / "k"
    p.write_bytes(content)
    os.chmod(p, 0o600)
    with pytest.raises(InputError, match=match):
        deidentify_table(patients, key_file=p)


def test_world_readable_key_warns_with_chmod(tmp_path, key, patients):
    os.chmod(key, 0o644)
    with pytest.warns(PmedWarning, match="chmod 600") as w:
        deidentify_table(patients.iloc[:3], key_file=key)
    assert str(key) in str(w[0].message) and "every user" in str(w[0].message)


def test_key_inside_output_folder_refused(tmp_path, patients):
    out = tmp_path / "release" / "t.csv"
    with pytest.raises(OptionError, match="inside the output's folder"):
        deidentify_table(patients, key_file=tmp_path / "release" / "k", create_key=True, out=out)
    assert not (tmp_path / "release").exists()  # refused before anything was written
    key = create_key(tmp_path / "release" / "k")
    res = deidentify_table(patients.iloc[:3], key_file=key)
    with pytest.raises(OptionError, match="inside the output's folder"):
        res.write(out)
    assert not out.exists()
    below = create_key(tmp_path / "project" / "keys" / "k")  # below the output's folder: a warning
    with pytest.warns(PmedWarning, match="subfolder"):
        deidentify_table(patients.iloc[:3], key_file=below).write(tmp_path / "project" / "t.csv")


def test_missing_columns_named_without_values(key, patients):
    with pytest.raises(NotFoundError) as e:
        deidentify_table(patients, key_file=key, id_col="subject")
    assert "'subject'" in str(e.value) and "'patient_id'" in str(e.value)
    with pytest.raises(NotFoundError, match="'height'"):
        deidentify_table(patients, key_file=key, quasi=["age", "height"])
    with pytest.raises(NotFoundError, match="'visit'"):
        deidentify_table(patients, key_file=key, date_cols="admit_date, visit")


def test_output_may_not_replace_input(tmp_path, key, patients):
    src = tmp_path / "t.csv"
    patients.iloc[:3].to_csv(src, index=False)
    before = sha256(src)
    with pytest.raises(InputError, match="replace"):
        deidentify_table(src, key_file=key).write(src)
    assert sha256(src) == before


def test_quasi_risk_in_report(key, patients):
    res = _deid(patients, key, quasi="sex,zip", k=3)
    assert res.risk["quasi"] == ["sex", "zip"] and res.risk["k"] == 3
    g = res.data.groupby(["sex", "zip"], dropna=False).size()
    assert res.risk["k_min"] == g.min() and res.risk["n_classes"] == len(g)
