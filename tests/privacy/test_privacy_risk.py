"""k-anonymity and l-diversity against an independent pandas groupby; enforcement meets k and l."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from privacy_fixtures import sha256

from pmed.errors import NotFoundError, OptionError
from pmed.privacy import PrivacyResult, check_risk, enforce_k_anonymity, run_privacy
from pmed.privacy.risk import hierarchy_for


def _groupby(df, quasi, k, sensitive=None, l=None):  # noqa: E741
    """The measures computed independently: pandas groupby with missing values as a group."""
    g = df.groupby(quasi, dropna=False)
    sizes = g.size()
    out = {"k_min": int(sizes.min()), "n_classes": int(len(sizes)), "n_classes_below_k": int((sizes < k).sum()),
           "n_records_below_k": int(sizes[sizes < k].sum())}
    if sensitive is not None:
        distinct = g[sensitive].nunique(dropna=False)
        out["l_min"] = int(distinct.min())
        if l is not None:
            out["n_classes_below_l"] = int((distinct < l).sum())
            out["n_records_below_l"] = int(sizes[distinct < l].sum())
    return out


def _known():
    """Classes of sizes 2, 3, 5 and 2 (one with a missing sex): k_min = 2 by construction."""
    rows = ([(30, "F", "021", "E11")] * 2 + [(30, "M", "021", "I10"), (30, "M", "021", "I10"), (30, "M", "021", "E11")]
            + [(40, "F", "100", d) for d in ("E11", "I10", "C50", "E11", "I10")] + [(40, None, "100", "E11")] * 2)
    return pd.DataFrame(rows, columns=["age", "sex", "zip", "dx"])


def test_known_table():
    r = check_risk(_known(), ["age", "sex", "zip"], k=3, l=2, sensitive="dx")
    assert (r["k_min"], r["n_classes"], r["n_classes_below_k"], r["n_records_below_k"]) == (2, 4, 2, 4)
    assert (r["l_min"], r["n_classes_below_l"], r["n_records_below_l"]) == (1, 2, 4)
    assert r["records_at_risk_share"] == pytest.approx(4 / 12)
    assert r["prosecutor_risk_max"] == 0.5 and r["n_records"] == 12
    # a missing value is a value: the two records without a sex form their own class
    assert check_risk(_known(), "sex", k=1)["n_classes"] == 3


@pytest.mark.parametrize("seed", range(4))
def test_measures_equal_independent_groupby(seed):
    rng = np.random.default_rng(seed)
    n = 400
    df = pd.DataFrame({"age": rng.integers(20, 40, n), "sex": rng.choice(["F", "M", None], n, p=[0.45, 0.45, 0.1]),
                       "zip": rng.choice(["021", "100", "941", "606"], n),
                       "dx": rng.choice(["E11", "I10", "C50", None], n, p=[0.5, 0.3, 0.15, 0.05])})
    quasi = ["age", "sex", "zip"]
    for k in (1, 2, 3, 5):
        r = check_risk(df, quasi, k=k, l=2, sensitive="dx")
        want = _groupby(df, quasi, k, "dx", 2)
        assert {key: r[key] for key in want} == want


def test_option_errors():
    df = _known()
    with pytest.raises(OptionError, match="larger than the table"):
        check_risk(df, ["age"], k=13)
    with pytest.raises(OptionError, match="at least 1"):
        check_risk(df, ["age"], k=0)
    with pytest.raises(OptionError, match="at least 1"):
        check_risk(df, ["age"], k=2, l=0, sensitive="dx")
    with pytest.raises(OptionError, match="--sensitive"):
        check_risk(df, ["age"], k=2, l=2)
    with pytest.raises(NotFoundError) as e:
        check_risk(df, ["age", "height", "weight"], k=2)
    assert "'height', 'weight'" in str(e.value) and "'zip'" in str(e.value)
    with pytest.raises(NotFoundError, match="sensitive column 'diagnosis'"):
        check_risk(df, ["age"], k=2, l=2, sensitive="diagnosis")
    with pytest.raises(OptionError, match="cannot hold"):
        enforce_k_anonymity(df, ["age"], k=2, l=5, sensitive="dx")


def _table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n)], "age": rng.integers(18, 99, n),
        "sex": rng.choice(["F", "M"], n), "zip": [f"{z:05d}" for z in rng.integers(1000, 99999, n)],
        "admit_date": (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")).strftime(
            "%Y-%m-%d"),
        "icd10": rng.choice(["E11.9", "E11.65", "I10", "I21.4", "C50.9", "C34.1", "J45.0"], n),
        "crp": rng.lognormal(0.5, 0.8, n).round(2), "dx": rng.choice(["a", "b", "c"], n)})


@pytest.mark.parametrize("quasi, k, l, sup", [
    (["age", "sex", "zip"], 5, None, 0.05), (["age", "sex", "zip", "admit_date"], 3, 2, 0.05),
    (["icd10", "crp", "sex"], 10, 3, 0.0), (["age", "zip"], 2, None, 0.2),
])
def test_enforce_meets_k_and_l(quasi, k, l, sup):  # noqa: E741
    df = _table()
    original = df.copy()
    released, info = enforce_k_anonymity(df, quasi, k=k, l=l, sensitive="dx" if l else None, max_suppression=sup)
    pd.testing.assert_frame_equal(df, original)  # the input table is not modified
    sizes = released.groupby(quasi, dropna=False).size()
    assert len(released) > 0 and sizes.min() >= k
    if l:
        assert released.groupby(quasi, dropna=False)["dx"].nunique(dropna=False).min() >= l
    assert info["records_suppressed"] == len(df) - len(released) and info["n_released"] == len(released)
    at_top = all(c["level"] == c["max_level"] for c in info["columns"].values())
    assert info["suppressed_share"] <= sup or at_top
    assert set(info["columns"]) == set(quasi)
    assert 0 <= info["precision_loss"] <= 1 and 0 <= info["distinct_values_lost_share"] <= 1
    assert released["patient_id"].isin(df["patient_id"]).all()  # records suppressed, never invented


def test_hierarchies():
    s = pd.Series([23, 47, 92, None])
    h = hierarchy_for("age", s, k=5)
    assert h.kind == "age" and h.apply(s, 1).tolist()[:3] == ["20-24", "45-49", "90+"]
    assert h.apply(s, 2).tolist()[:2] == ["20-29", "40-49"] and h.apply(s, 3).tolist()[:2] == ["20-39", "40-59"]
    assert h.apply(s, 4).tolist()[:3] == ["*"] * 3 and pd.isna(h.apply(s, 4).iloc[3])
    d = pd.Series(["2020-03-15", "2021-11-02"])
    hd = hierarchy_for("admit_date", d, k=5)
    assert hd.kind == "date" and hd.apply(d, 1).tolist() == ["2020-03", "2021-11"] and hd.apply(d, 2).tolist() == [
        "2020", "2021"]
    z = pd.Series(["02134", "SW1A 1AA"])
    hz = hierarchy_for("zip", z, k=5)
    assert hz.apply(z, 1).tolist() == ["0213*", "SW1A"] and hz.apply(z, 2).tolist() == ["021**", "SW"]
    c = pd.Series(["E11.65", "I21.4", "C50.9"])
    hc = hierarchy_for("dx_code", c, k=5)
    assert hc.kind == "code" and hc.apply(c, 1).tolist() == ["E11", "I21", "C50"]
    assert hc.apply(c, 2).tolist() == ["E", "I", "C"]
    x = pd.Series(np.arange(100, dtype=float))
    hx = hierarchy_for("crp", x, k=5)
    assert hx.kind == "numeric" and hx.apply(x, 1).nunique() == 10 and hx.apply(x, 3).nunique() == 2


def test_run_privacy_writes_report_and_release(tmp_path):
    src = tmp_path / "données ü.csv"
    _table().to_csv(src, index=False)
    before = sha256(src)
    res = run_privacy(src, quasi="age,sex,zip", k=5, l=2, sensitive="dx", enforce=True)
    assert isinstance(res, PrivacyResult)
    files = res.write(tmp_path / "out é")
    assert sha256(src) == before
    report = json.loads(files["privacy"].read_text())
    assert report["risk"]["k_min"] == _groupby(pd.read_csv(src), ["age", "sex", "zip"], 5)["k_min"]
    assert report["risk_after"]["k_min"] >= 5 and report["risk_after"]["l_min"] >= 2
    released = pd.read_csv(files["released"], dtype=str)
    assert released.groupby(["age", "sex", "zip"], dropna=False).size().min() >= 5
    assert (tmp_path / "out é" / "provenance.json").exists()
    block = res.to_block().data
    assert block.index.name == "patient_id" and len(block) == 300
    assert int(block["suppressed"].sum()) == report["enforcement"]["records_suppressed"]
    assert res.summary()["k_min"] == report["risk"]["k_min"]
    # the report holds counts and levels, never a patient's value
    text = files["privacy"].read_text()
    assert "P1" not in text and "021" not in text
