"""GDSC v17 loaders: checked against the raw files (read independently) and known biology."""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from pmed import Cohort, TableSchema
from pmed.datasets._paths import SHARED_ENV, shared_data_dir
from pmed.datasets.gdsc import (
    GDSC_SUBDIR,
    gdsc_drugs,
    load_gdsc,
    resolve_gdsc_drug,
    write_gdsc_table,
)
from pmed.errors import DataNotFoundError, InputError

NUTLIN = "Drug_1047_IC50"


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def gdsc_root() -> Path:
    root = shared_data_dir() / GDSC_SUBDIR
    if not (root / "IC50_v17.csv.gz").exists() or not (
        root / "genomic_features_v17.csv.gz"
    ).exists():
        pytest.skip(f"GDSC v17 reference data not found at {root}; set {SHARED_ENV}")
    return root


def _raw_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a gzipped CSV with the csv module: independent of pandas and pmed."""
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


@pytest.fixture(scope="module")
def raw_ic50(gdsc_root: Path) -> dict[str, dict[str, float]]:
    header, rows = _raw_rows(gdsc_root / "IC50_v17.csv.gz")
    return {
        r[0]: {h: float(v) if v not in ("", "NA", "nan", "NaN") else math.nan
               for h, v in zip(header[1:], r[1:], strict=True)}
        for r in rows
    }


@pytest.fixture(scope="module")
def raw_features(gdsc_root: Path) -> tuple[list[str], list[list[str]]]:
    return _raw_rows(gdsc_root / "genomic_features_v17.csv.gz")


@pytest.fixture(scope="module")
def full(gdsc_root: Path) -> Cohort:
    return load_gdsc(root=gdsc_root)


@pytest.fixture(scope="module")
def nutlin(gdsc_root: Path) -> Cohort:
    return load_gdsc("Nutlin-3a", root=gdsc_root)


# ---------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_full_cohort_matches_raw_files(full: Cohort, raw_ic50, raw_features) -> None:
    header, rows = raw_features
    feature_ids = {r[0] for r in rows}
    expected_ids = feature_ids & set(raw_ic50)
    assert len(expected_ids) == 988  # GDSC v17 as bundled in gdsctools 1.0.1
    assert set(full.ids) == expected_ids
    assert full.ids.name == "COSMIC_ID"
    assert all(isinstance(i, str) for i in full.ids)
    # every feature column kept, under the file's own names, in the file's order
    assert list(full.patients.columns) == header[1:]
    assert full.patients.shape == (988, 679)
    # outcomes: every drug column, ln(IC50)
    drug_cols = next(iter(raw_ic50.values())).keys()
    assert list(full.outcomes.columns) == list(drug_cols)
    assert full.outcomes.shape == (988, 265)
    some = sorted(expected_ids)[:25]
    for cid in some:
        for col in ("Drug_1_IC50", NUTLIN, "Drug_1529_IC50"):
            got, want = full.outcomes.at[cid, col], raw_ic50[cid][col]
            assert (math.isnan(want) and pd.isna(got)) or got == pytest.approx(want, abs=1e-12)


@pytest.mark.realdata
def test_features_are_typed_and_binary(full: Cohort) -> None:
    p = full.patients
    assert isinstance(p["TISSUE_FACTOR"].dtype, pd.CategoricalDtype)
    assert p["TISSUE_FACTOR"].notna().all()
    assert p["TISSUE_FACTOR"].nunique() == 27
    assert "lung_NSCLC" in p["TISSUE_FACTOR"].cat.categories
    binary = p.drop(columns="TISSUE_FACTOR")
    assert binary.shape[1] == 678
    assert sum(c.endswith("_mut") for c in binary.columns) == 270
    assert sum(c.startswith(("gain_cna", "loss_cna")) for c in binary.columns) == 407
    assert binary.isin([0, 1]).all().all()
    # TP53 is the most frequently mutated gene in cancer lines: binary with both states
    assert set(p["TP53_mut"].unique()) == {0, 1}
    assert 0.4 < p["TP53_mut"].mean() < 0.8
    # the schema says what each column is
    s = full.schema
    assert s is not None and s.id == "COSMIC_ID"
    assert s.columns["TP53_mut"].type == "int"
    assert (s.columns["TP53_mut"].min, s.columns["TP53_mut"].max) == (0, 1)
    assert s.columns["TISSUE_FACTOR"].type == "category"
    assert s.columns[NUTLIN].unit == "ln(µM)" and not s.columns[NUTLIN].required
    # model-ready features keep the names, so importances can say "TP53_mut"
    X = full.features()
    assert "TP53_mut" in X.columns and X["TP53_mut"].dtype == "float64"


@pytest.mark.realdata
def test_nutlin_keeps_screened_lines_only(nutlin: Cohort, raw_ic50) -> None:
    screened = {cid for cid, row in raw_ic50.items() if not math.isnan(row[NUTLIN])}
    assert len(screened) == 846
    assert nutlin.n_patients == len(screened)
    assert set(nutlin.ids) == screened
    assert list(nutlin.outcomes.columns) == ["ln_ic50"]
    assert nutlin.outcomes["ln_ic50"].notna().all()
    for cid in sorted(screened)[:50]:
        assert nutlin.outcomes.at[cid, "ln_ic50"] == pytest.approx(raw_ic50[cid][NUTLIN], abs=1e-12)
    src = nutlin.sources
    assert src["drug"] == NUTLIN
    assert src["drug_name"] == "Nutlin-3a"
    assert src["drug_target"] == "MDM2"
    assert src["n_screened"] == str(len(screened))
    assert "Iorio" in src["citation"]
    assert "ln_ic50" in nutlin.schema.columns
    assert "Nutlin-3a" in nutlin.schema.columns["ln_ic50"].description


@pytest.mark.realdata
def test_nutlin_is_more_potent_in_tp53_wild_type_lines(nutlin: Cohort) -> None:
    # Nutlin-3a frees p53 from MDM2: it needs functional p53, so TP53 wild-type lines are
    # the sensitive ones (lower IC50). This is the best-known biomarker in GDSC.
    y = nutlin.outcomes["ln_ic50"]
    mut = nutlin.patients["TP53_mut"]
    wt_mean, mut_mean = y[mut == 0].mean(), y[mut == 1].mean()
    assert wt_mean < mut_mean - 1.0  # ≈ 2.5 vs 4.1 in v17
    assert mannwhitneyu(y[mut == 0], y[mut == 1], alternative="less").pvalue < 1e-20


@pytest.mark.realdata
@pytest.mark.parametrize(
    "spec",
    ["Drug_1047", "Drug_1047_IC50", "drug_1047_ic50", "1047", 1047, "Nutlin-3a", "NUTLIN-3A",
     "nutlin 3a", " Nutlin3a "],
)
def test_drug_name_variants_resolve(spec, gdsc_root: Path) -> None:
    cols = gdsc_drugs(gdsc_root).index
    from pmed.datasets.gdsc import _read_decode

    assert resolve_gdsc_drug(spec, cols, _read_decode(gdsc_root)) == NUTLIN


@pytest.mark.realdata
def test_load_by_id_equals_load_by_name(nutlin: Cohort, gdsc_root: Path) -> None:
    by_id = load_gdsc("1047", root=gdsc_root)
    assert by_id.equals(nutlin)
    # a drug DRUG_DECODE does not name still loads; it just has no name
    other = load_gdsc("Drug_1", root=gdsc_root)
    assert other.sources["drug"] == "Drug_1_IC50" and "drug_name" not in other.sources
    assert other.n_patients == 375


@pytest.mark.realdata
def test_unknown_and_unscreened_drugs_are_refused(gdsc_root: Path) -> None:
    with pytest.raises(InputError, match="unknown GDSC drug") as e:
        load_gdsc("Nutlin", root=gdsc_root)
    assert "Nutlin-3a" in str(e.value)  # suggested
    with pytest.raises(InputError, match="unknown GDSC drug"):
        load_gdsc("Drug_123456", root=gdsc_root)
    # DRUG_DECODE names Erlotinib (Drug_999) but v17's IC50 table has no such column
    with pytest.raises(InputError, match="no IC50 column"):
        load_gdsc("Erlotinib", root=gdsc_root)


@pytest.mark.realdata
def test_gdsc_drugs_table(gdsc_root: Path, raw_ic50) -> None:
    d = gdsc_drugs(gdsc_root)
    assert d.shape == (265, 4)
    assert list(d.columns) == ["drug_id", "name", "target", "n_screened"]
    assert d.loc[NUTLIN, "name"] == "Nutlin-3a" and d.loc[NUTLIN, "drug_id"] == 1047
    assert d.loc[NUTLIN, "n_screened"] == 846
    assert d.loc["Drug_1054_IC50", "target"] == "CDK4, CDK6"
    assert d["name"].notna().sum() == 10  # 11 named in DRUG_DECODE, Drug_999 not screened
    for col in ("Drug_1_IC50", "Drug_999_IC50"):
        if col in d.index:
            n = sum(not math.isnan(r[col]) for r in raw_ic50.values())
            assert d.loc[col, "n_screened"] == n


@pytest.mark.realdata
def test_save_load_round_trip(nutlin: Cohort, tmp_path: Path) -> None:
    back = Cohort.load(nutlin.save(tmp_path / "gdsc_nutlin"))
    assert back.equals(nutlin)
    assert back.schema.to_dict() == nutlin.schema.to_dict()
    assert back.patients["TISSUE_FACTOR"].dtype == nutlin.patients["TISSUE_FACTOR"].dtype


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")
def test_write_gdsc_table_reads_back(nutlin: Cohort, gdsc_root: Path, tmp_path: Path) -> None:
    table, schema = write_gdsc_table(tmp_path / "gdsc_nutlin.csv", "Nutlin-3a", root=gdsc_root)
    assert table == tmp_path / "gdsc_nutlin.csv"
    assert schema == tmp_path / "gdsc_nutlin.schema.yaml"
    header = table.read_text().splitlines()[0].split(",")
    assert header[0] == "COSMIC_ID" and header[-1] == "ln_ic50" and "TP53_mut" in header
    assert TableSchema.read(schema).to_dict() == nutlin.schema.to_dict()
    assert "Nutlin-3a" in schema.read_text().splitlines()[0]

    back = Cohort.from_files(table, schema=schema, outcomes=["ln_ic50"])
    assert list(back.ids) == list(nutlin.ids)
    pd.testing.assert_frame_equal(back.outcomes, nutlin.outcomes, check_exact=True)
    # values equal; dtypes are whatever read_table gives (compared after model-ready casting)
    pd.testing.assert_frame_equal(back.features(), nutlin.features(), check_categorical=False)


# ---------------------------------------------------------------------- no real data needed
def test_missing_root_names_path_and_env(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError) as e:
        load_gdsc("Nutlin-3a", root=missing)
    msg = str(e.value)
    assert str(missing) in msg and "PMED_SHARED" in msg
    with pytest.raises(DataNotFoundError):
        gdsc_drugs(missing)


def test_env_var_selects_shared_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHARED_ENV, str(tmp_path))
    assert shared_data_dir() == tmp_path.resolve()
    with pytest.raises(DataNotFoundError) as e:
        load_gdsc()
    assert str(tmp_path.resolve() / GDSC_SUBDIR) in str(e.value)


def test_default_shared_dir_is_beside_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SHARED_ENV, raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert shared_data_dir() == (tmp_path / "shared").resolve()


def _tiny_gdsc(folder: Path, *, bad_value: bool = False) -> Path:
    folder.mkdir(parents=True)
    feats = pd.DataFrame({
        "COSMIC_ID": [101, 102, 103],
        "TISSUE_FACTOR": ["breast", "skin", "breast"],
        "MSI_FACTOR": [0, 1, 0],
        "TP53_mut": [1, 0, 2 if bad_value else 1],
    })
    feats.to_csv(folder / "genomic_features_v17.csv.gz", index=False)
    pd.DataFrame({"COSMIC_ID": [103, 101, 102], "Drug_7_IC50": [1.5, None, -0.25]}).to_csv(
        folder / "IC50_v17.csv.gz", index=False)
    return folder


def test_small_release_without_decode_file(tmp_path: Path) -> None:
    root = _tiny_gdsc(tmp_path / "data" / "drug_response" / "gdsc_v17")
    # the shared folder itself is accepted as root as well as the release folder
    for r in (root, tmp_path):
        c = load_gdsc("7", root=r)
        assert list(c.ids) == ["102", "103"]  # feature-file order, unscreened 101 dropped
        assert c.outcomes["ln_ic50"].tolist() == [-0.25, 1.5]
        assert c.patients["TP53_mut"].tolist() == [0, 1]
    d = gdsc_drugs(root)
    assert d.loc["Drug_7_IC50", "n_screened"] == 2 and pd.isna(d.loc["Drug_7_IC50", "name"])


def test_non_binary_feature_is_an_input_error(tmp_path: Path) -> None:
    root = _tiny_gdsc(tmp_path / "g", bad_value=True)
    with pytest.raises(InputError, match="TP53_mut"):
        load_gdsc(root=root)
