"""Loaders of data sets bundled in PyPI packages: counts from the literature, types, round trips."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed import Cohort
from pmed.datasets.bundled import (
    LIFELINES_DATASETS,
    MissingDependencyError,
    load_breast_cancer,
    load_gbsg2,
    load_lifelines,
    load_sksurv_breast_cancer,
)
from pmed.errors import DataNotFoundError, InputError


def _check_common(c: Cohort, outcomes: list[str]) -> None:
    """Invariants every bundled cohort keeps."""
    assert all(isinstance(i, str) for i in c.ids) and c.ids.is_unique
    assert list(c.outcomes.columns) == outcomes
    assert not set(outcomes) & set(c.patients.columns)
    s = c.schema
    assert s is not None
    assert set(s.columns) == set(c.patients.columns) | set(outcomes)
    assert all(not s.columns[o].required for o in outcomes)
    assert {"dataset", "package", "citation"} <= set(c.sources)
    # the declared schema accepts the data it describes (ranges, categories, types)
    table = c.patients.join(c.outcomes).reset_index()
    s.validate(table)
    X = c.features()
    assert X.shape == c.patients.shape


# ---------------------------------------------------------------------- scikit-learn
def test_breast_cancer_counts_and_label_direction() -> None:
    from sklearn.datasets import load_breast_cancer as sk_load

    c = load_breast_cancer()
    _check_common(c, ["malignant"])
    assert c.patients.shape == (569, 30)
    y = c.target("malignant")
    assert int(y.sum()) == 212 and int((y == 0).sum()) == 357
    # sklearn's target is 0 = malignant: ours must be its complement, row for row
    sk = sk_load()
    np.testing.assert_array_equal(y.to_numpy(dtype=int), 1 - sk.target)
    np.testing.assert_allclose(c.patients.to_numpy(dtype=float), sk.data)
    assert list(c.patients.columns) == list(sk.feature_names)
    # malignant nuclei are larger: the textbook signal of this data set
    r = c.patients["mean radius"]
    assert r[y == 1].mean() > r[y == 0].mean() + 4
    assert "Wolberg" in c.sources["citation"]


def test_breast_cancer_round_trip(tmp_path: Path) -> None:
    c = load_breast_cancer()
    back = Cohort.load(c.save(tmp_path / "wdbc"))
    assert back.equals(c)
    assert back.schema.to_dict() == c.schema.to_dict()
    assert back.target("malignant").dtype == c.target("malignant").dtype


# ---------------------------------------------------------------------- scikit-survival
def test_gbsg2() -> None:
    ds = pytest.importorskip("sksurv.datasets")
    c = load_gbsg2()
    _check_common(c, ["event", "time"])
    assert c.patients.shape == (686, 8)
    assert int(c.target("event").sum()) == 299  # recurrence or death
    assert set(c.target("event").unique()) == {0, 1}
    assert c.schema.columns["time"].unit == "days"
    assert c.schema.columns["tgrade"].categories == ("I", "II", "III")
    assert c.patients["tgrade"].notna().all()
    assert c.patients["pnodes"].dtype == "Int64"
    X, y = ds.load_gbsg2()
    np.testing.assert_array_equal(c.target("event").to_numpy(dtype=bool), y["cens"])
    np.testing.assert_allclose(c.target("time").to_numpy(), y["time"])
    np.testing.assert_allclose(c.patients["age"].to_numpy(), X["age"].to_numpy())


def test_gbsg2_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("sksurv.datasets")
    c = load_gbsg2()
    back = Cohort.load(c.save(tmp_path / "gbsg2"))
    assert back.equals(c)
    assert back.schema.to_dict() == c.schema.to_dict()


def test_sksurv_breast_cancer() -> None:
    pytest.importorskip("sksurv.datasets")
    c = load_sksurv_breast_cancer()
    _check_common(c, ["event", "time"])
    assert c.patients.shape == (198, 80)
    genes = [g for g in c.patients.columns if g.endswith("_at")]
    assert len(genes) == 76
    assert {"age", "er", "grade", "size"} <= set(c.patients.columns)
    assert int(c.target("event").sum()) == 51  # distant metastases
    # the source's "unkown" grade is not a grade: 2 patients become missing
    assert int(c.patients["grade"].isna().sum()) == 2
    assert "unkown" not in c.patients["grade"].cat.categories


def test_missing_optional_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # a None entry in sys.modules makes the import fail as if the package were absent
    monkeypatch.setitem(sys.modules, "sksurv.datasets", None)
    monkeypatch.setitem(sys.modules, "lifelines.datasets", None)
    for loader in (load_gbsg2, load_sksurv_breast_cancer, lambda: load_lifelines("rossi")):
        with pytest.raises(MissingDependencyError) as e:
            loader()
        assert isinstance(e.value, ImportError) and isinstance(e.value, DataNotFoundError)
        assert "pip install 'pmed[survival]'" in str(e.value)


# ---------------------------------------------------------------------- lifelines
def test_rossi() -> None:
    pytest.importorskip("lifelines")
    c = load_lifelines("rossi")
    _check_common(c, ["event", "time"])
    assert c.patients.shape == (432, 7)
    assert int(c.target("event").sum()) == 114
    t = c.target("time")
    assert t.min() >= 1 and t.max() == 52
    assert (t[c.target("event") == 0] == 52).all()  # censored at one year
    assert c.schema.columns["time"].unit == "weeks"


def test_lung() -> None:
    pytest.importorskip("lifelines")
    c = load_lifelines("lung")
    _check_common(c, ["event", "time"])
    assert c.patients.shape == (228, 8)
    assert int(c.target("event").sum()) == 165
    assert c.patients["sex"].value_counts().to_dict() == {"male": 138, "female": 90}
    assert c.schema.columns["time"].unit == "days"


def test_actg175() -> None:
    lifelines = pytest.importorskip("lifelines")
    if not (Path(lifelines.__file__).parent / "datasets" / "ACTG175.csv").exists():
        pytest.skip("ACTG175.csv not in this lifelines version")
    c = load_lifelines("actg175")
    outcomes = ["event", "time", "cd420", "cd496", "r", "cd820", "offtrt"]
    _check_common(c, outcomes)
    assert c.n_patients == 2139 and c.ids.name == "pidnum"
    assert c.patients.shape[1] == 19
    assert int(c.target("event").sum()) == 521
    assert c.patients["arms"].value_counts().sum() == 2139
    # post-randomisation measurements must not be usable as features
    assert not {"cd420", "cd496", "cd820", "offtrt", "r"} & set(c.features().columns)
    # cd496 is missing exactly when r = 0
    assert (c.outcomes["cd496"].isna() == (c.outcomes["r"] == 0)).all()


@pytest.mark.parametrize("name", ["rossi", "Rossi", " LUNG ", "ACTG175", "actg_175"])
def test_lifelines_name_variants(name: str) -> None:
    pytest.importorskip("lifelines")
    c = load_lifelines(name)
    assert c.n_patients in (432, 228, 2139)


def test_lifelines_unknown_name() -> None:
    with pytest.raises(InputError, match="unknown lifelines data set") as e:
        load_lifelines("waltons")
    assert all(n in str(e.value) for n in LIFELINES_DATASETS)


@pytest.mark.parametrize(
    "loader", [load_breast_cancer, load_gbsg2, lambda: load_lifelines("lung")]
)
def test_schema_round_trips_through_yaml(loader: Callable[[], Cohort], tmp_path: Path) -> None:
    if loader is not load_breast_cancer:
        pytest.importorskip("sksurv.datasets")
        pytest.importorskip("lifelines")
    import yaml

    from pmed import TableSchema

    c = loader()
    p = tmp_path / "schema.yaml"
    p.write_text(yaml.safe_dump(c.schema.to_dict(), allow_unicode=True, sort_keys=False))
    assert TableSchema.read(p).to_dict() == c.schema.to_dict()
    # and the file form of the cohort reads back to the same values
    table = tmp_path / "t.csv"
    c.patients.join(c.outcomes).to_csv(table)
    back = Cohort.from_files(table, schema=p, outcomes=list(c.outcomes.columns), id=c.schema.id)
    pd.testing.assert_frame_equal(back.features(), c.features(), check_categorical=False,
                                  check_dtype=False)
