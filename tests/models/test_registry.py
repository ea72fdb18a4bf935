"""The model registry: families by name, class_weight=None by default, opt-in imbalance handling,
GRU-D and the CNN named in a study."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from conftest import write_study
from pmed.errors import OptionError, StudyError
from pmed.models import DEFAULT_FAMILIES, FAMILIES, get_family, make_model, register_model
from pmed.models.registry import _REGISTRY
from pmed.study import run_study
from pmed.study.spec import load_study


def _X(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)}, index=[f"p{i}" for i in range(n)])
    y = pd.Series((X["a"] + rng.normal(0, 0.5, n) > 0).astype(int), index=X.index)
    return X, y


def test_registry_lists_builtin_and_torch_families():
    assert {"linear", "elastic_net", "random_forest", "lightgbm", "svm", "grud", "cnn"} <= set(FAMILIES)
    # a study without `models:` still runs the tabular zoo only
    assert set(DEFAULT_FAMILIES) == {"mean", "linear", "elastic_net", "random_forest", "lightgbm", "svm"}
    assert get_family("grud").tasks == ("binary",)
    with pytest.raises(StudyError, match="unknown model family 'nope'"):
        get_family("nope")


@pytest.mark.parametrize("family", ["linear", "elastic_net", "random_forest", "lightgbm", "svm"])
def test_binary_models_are_unweighted_by_default(family):
    X, _ = _X()
    from sklearn.calibration import CalibratedClassifierCV

    def inner(pipe):  # the SVM sits inside its Platt calibration
        m = pipe.named_steps["model"]
        return m.estimator if isinstance(m, CalibratedClassifierCV) else m

    assert inner(make_model(family, task="binary", X=X)).get_params()["class_weight"] is None
    weighted = make_model(family, task="binary", X=X, params={"class_weight": "balanced"})
    assert inner(weighted).get_params()["class_weight"] == "balanced"


def test_torch_estimators_are_unweighted_by_default():
    from pmed.imaging.train import ImageClassifier
    from pmed.timeseries.grud import GRUDClassifier

    assert GRUDClassifier().class_weight is None and ImageClassifier().class_weight is None


def test_register_a_family_and_name_it_in_a_study(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    def knn(*, task, params, seed, X):
        return KNeighborsClassifier(**{"n_neighbors": 5, **params})

    register_model("knn_test", knn, description="k nearest neighbours", tasks=("binary",))
    try:
        assert FAMILIES["knn_test"] == "k nearest neighbours"
        with pytest.raises(OptionError, match="already registered"):
            register_model("knn_test", knn)
        with pytest.raises(OptionError, match="not callable"):
            register_model("other_test", "knn")
        p = tmp_path / "s.yaml"
        p.write_text("name: s\ndata: {dataset: {name: breast_cancer}}\ntarget: {column: malignant, task: binary}\n"
                     "models: [{family: knn_test}]\n")
        assert load_study(p).models[0].family == "knn_test"
        p.write_text(p.read_text().replace("binary", "continuous"))
        with pytest.raises(StudyError, match="handles binary targets, not continuous"):
            load_study(p)
    finally:
        _REGISTRY.pop("knn_test", None)


def test_grud_and_cnn_explain_what_data_they_need():
    X, _ = _X()
    with pytest.raises(StudyError, match="grid columns"):
        make_model("grud", task="binary", X=X)
    with pytest.raises(StudyError, match="images"):
        make_model("cnn", task="binary", X=X)
    with pytest.raises(StudyError, match="handles binary targets"):
        make_model("grud", task="continuous", X=X)


def _grid_table(n=48, seed=0):
    from pmed.timeseries import to_grid

    rng = np.random.default_rng(seed)
    rows, ys = [], []
    for i in range(n):
        yi = int(i % 3 == 0)
        ys.append(yi)
        for t in np.sort(rng.uniform(0, 4, 3)):
            rows.append((f"p{i}", t, "HR", 80 + 15 * yi + rng.normal(0, 3)))
    d = pd.DataFrame(rows, columns=["patient_id", "time", "variable", "value"]).sort_values(["patient_id", "time"])
    ids = [f"p{i}" for i in range(n)]
    F = to_grid(d, variables=["HR"], step=1.0, end=4.0, patients=ids).flatten()
    return F, pd.Series(ys, index=ids)


def test_grud_pipeline_from_the_registry_fits_and_pickles():
    pytest.importorskip("torch")
    F, y = _grid_table()
    F = F.assign(age=np.linspace(40, 80, len(F)))
    pipe = make_model("grud", task="binary", X=F, params={"hidden_size": 4, "max_epochs": 3, "n_jobs": 1},
                      seed=1)
    pipe.fit(F, y)
    assert pipe.named_steps["model"].static_columns_ == ["age"]
    p = pipe.predict_proba(F)[:, 1]
    back = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(back.predict_proba(F)[:, 1], p, atol=1e-6)


def test_grud_in_a_study(tmp_path):
    pytest.importorskip("torch")
    F, y = _grid_table()
    F.index.name = "patient_id"
    F.to_csv(tmp_path / "grid.csv")
    pd.DataFrame({"patient_id": y.index, "event": y.to_numpy(), "age": np.linspace(40, 80, len(y))}).to_csv(
        tmp_path / "patients.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        "name: grud-study\ndata:\n  patients: patients.csv\n  blocks: {grid: grid.csv}\n"
        "target: {column: event, task: binary}\n"
        "models:\n  - {family: grud, params: {hidden_size: 4, max_epochs: 2, n_jobs: 1}}\n"
        "evaluation: {folds: 2, bootstrap: 0, report: false}\n")
    r = run_study(tmp_path / "s.yaml", tmp_path / "out")
    assert r.metrics["models"]["grud"]["class_weight"] is None
    assert r.metrics["imbalance"]["weighting"] == "none"
    assert (tmp_path / "out" / "model").exists()


def test_study_without_series_refuses_grud_before_fitting(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear", "grud"))
    with pytest.raises(StudyError, match="grid columns"):
        run_study(study, tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_imbalance_opt_in_weights_and_recalibrates_in_fold(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear",), extra="imbalance: {weighting: balanced}\n")
    s = load_study(study)
    spec = s.models[0]
    assert s.model_params(spec)["class_weight"] == "balanced"
    assert s.calibration_of(spec) == "sigmoid"
    r = run_study(study, tmp_path / "out")
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["imbalance"]["weighting"] == "balanced" and m["imbalance"]["recalibrate"] == "sigmoid"
    assert m["models"]["linear"]["class_weight"] == "balanced"
    assert m["models"]["linear"]["calibration"] == "sigmoid"
    from sklearn.calibration import CalibratedClassifierCV

    assert isinstance(load_bundle_model(r.bundle_path), CalibratedClassifierCV)
    report = (tmp_path / "out" / "evaluation" / "report.html").read_text()
    assert "Class imbalance: classes weighted to balance them" in report


def load_bundle_model(path):
    from pmed.study import load_bundle

    return load_bundle(path).pipeline


def test_default_study_says_no_imbalance_handling(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear",))
    r = run_study(study, tmp_path / "out")
    assert r.metrics["imbalance"]["weighting"] == "none" and r.metrics["imbalance"]["recalibrate"] is None
    assert r.metrics["models"]["linear"]["class_weight"] is None
    report = (tmp_path / "out" / "evaluation" / "report.html").read_text()
    assert "Class imbalance: None: models are fitted unweighted" in report


def test_imbalance_is_refused_for_a_continuous_target(clinical_files, tmp_path):
    study = write_study(tmp_path, target="sbp", task="continuous", models=("linear",),
                        extra="imbalance: {weighting: balanced}\n")
    with pytest.raises(StudyError, match="binary targets only"):
        load_study(study)
    ok = write_study(tmp_path, models=("linear",), extra="imbalance: {weighting: balanced, recalibrate: none}\n")
    s = load_study(ok)
    assert s.calibration_of(s.models[0]) is None
