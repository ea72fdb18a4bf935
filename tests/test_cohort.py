import numpy as np
import pandas as pd
import pytest

from conftest import SCHEMA_YAML
from pmed import Cohort
from pmed.errors import IDMismatchError, InputError, ValidationError
from pmed.schema import TableSchema


@pytest.fixture
def cohort(clinical_files):
    return Cohort.from_files(clinical_files["patients"], schema=clinical_files["schema"],
                             outcomes=["event", "sbp"])


def test_from_files_splits_outcomes(cohort):
    assert cohort.n_patients == 300
    assert list(cohort.outcomes.columns) == ["event", "sbp"]
    assert "event" not in cohort.patients.columns
    assert cohort.ids[0] == "P0000"
    assert cohort.target("event").isin([0, 1]).all()


def test_add_block_aligns_and_counts_extras(cohort):
    block = pd.DataFrame({"rs1": np.arange(301) % 3}, index=[*cohort.ids[::-1], "EXTRA"])
    cohort.add_block("genotypes", block, provenance={"file": "g.vcf"})
    b = cohort.blocks["genotypes"]
    assert list(b.data.index) == list(cohort.ids)  # reordered to the cohort
    assert b.data.loc["P0000", "rs1"] == block.loc["P0000", "rs1"]
    assert b.provenance["n_extra_ids_dropped"] == 1


def test_block_missing_patients_is_an_id_mismatch(cohort):
    block = pd.DataFrame({"score": 1.0}, index=cohort.ids[:-3])
    with pytest.raises(IDMismatchError) as e:
        cohort.add_block("prs", block, provenance={"file": "prs.tsv"})
    # a count and the rows of the patient table, never the IDs (issue #16)
    assert "3 of the cohort's 300 patients are missing from block 'prs' (patient table rows 298, 299, 300)" \
        in str(e.value)
    assert not any(pid in str(e.value) for pid in cohort.ids[-3:])
    assert str(e.value).startswith("prs.tsv")
    assert "allow" not in e.value.fix  # said the command-line way
    cohort.add_block("prs", block, allow_missing=True)
    assert cohort.blocks["prs"].data["score"].isna().sum() == 3


def test_block_with_no_shared_id(cohort):
    block = pd.DataFrame({"score": 1.0}, index=[f"FAM_{i}" for i in range(300)])
    with pytest.raises(IDMismatchError, match="shares no patient ID") as e:
        cohort.add_block("prs", block)
    # the IDs' form shows the prefix that differs; no ID is in the message
    assert "block IDs look like 'AAA_999'; cohort IDs like 'A9999'" in str(e.value)
    assert "FAM_0" not in str(e.value) and "P0000" not in str(e.value)


def test_block_column_clash(cohort):
    with pytest.raises(ValidationError, match="already used"):
        cohort.add_block("x", pd.DataFrame({"age": 1.0}, index=cohort.ids))


def test_features_are_model_ready(cohort):
    cohort.add_block("prs", pd.DataFrame({"prs_cad": np.linspace(0, 1, 300)}, index=cohort.ids))
    X = cohort.features()
    assert list(X.columns)[-1] == "prs_cad"
    assert X["diabetes"].dtype == "float64"  # nullable bool → float
    assert isinstance(X["sex"].dtype, pd.CategoricalDtype)
    assert list(cohort.features(["prs"]).columns) == ["prs_cad"]
    assert "age" not in cohort.features(exclude=["age"]).columns
    with pytest.raises(ValidationError, match="unknown block 'omics'"):
        cohort.features(["omics"])


def test_outcome_table_ids_must_match():
    p = pd.DataFrame({"age": [1.0, 2.0]}, index=["a", "b"])
    with pytest.raises(IDMismatchError, match=r"1 ID\(s\) in outcomes but not patients \(rows 2 of outcomes\)"):
        Cohort(p, outcomes=pd.DataFrame({"y": [0, 1]}, index=["a", "c"]))


def test_duplicate_ids_refused():
    with pytest.raises(ValidationError, match=r"1 patient ID\(s\) repeated, rows 1, 2"):
        Cohort(pd.DataFrame({"age": [1.0, 2.0]}, index=["a", "a"]))


def test_save_load_round_trip(cohort, tmp_path):
    cohort.add_block("prs", pd.DataFrame({"prs_cad": np.linspace(0, 1, 300)}, index=cohort.ids),
                     provenance={"file": "prs.tsv", "reader": "test"})
    cohort.sources["vcf"] = "genotypes.vcf.gz"
    cohort.save(tmp_path / "c")
    back = Cohort.load(tmp_path / "c")
    assert back.equals(cohort)
    # dtypes survive, not only values
    pd.testing.assert_frame_equal(back.patients, cohort.patients)
    assert back.blocks["prs"].provenance["reader"] == "test"
    assert back.schema.columns == TableSchema.from_dict(__import__("yaml").safe_load(SCHEMA_YAML)).columns
    # saving again over it replaces it whole
    cohort.subset(cohort.ids[:10]).save(tmp_path / "c")
    assert Cohort.load(tmp_path / "c").n_patients == 10


def test_load_refuses_non_cohort(tmp_path):
    with pytest.raises(InputError, match="not a pmed cohort folder"):
        Cohort.load(tmp_path)


def test_subset_unknown_ids(cohort):
    with pytest.raises(IDMismatchError, match=r"1 of the 2 IDs asked for are not patients of the cohort "
                                              r"\(positions 2\)") as e:
        cohort.subset(["P0000", "ZZZ"])
    assert "ZZZ" not in str(e.value)
