"""``pmed run --scheduler``: the cross-validation fits on a Dask cluster, the same outputs."""

import os

import numpy as np
import pandas as pd
import pytest

from conftest import write_study

pytest.importorskip("distributed")

from pmed.cli import main  # noqa: E402
from pmed.errors import InputError, MissingDependencyError, OptionError  # noqa: E402
from pmed.study import run_study  # noqa: E402

OUTPUTS = ("metrics.json", "oof_predictions.csv", "model_comparison.csv", "feature_importance.csv")


class Recorder:
    """A progress reporter that keeps every message, with the process it came from."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, int]] = []

    def start(self, total, description=""):
        self.calls.append((f"start {total}", os.getpid()))

    def advance(self, description=None, n=1):
        self.calls.append((description, os.getpid()))


def test_study_on_a_local_cluster_writes_the_same_outputs(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear", "lightgbm"))
    here, there = Recorder(), Recorder()
    a = run_study(study, tmp_path / "here", progress=here)
    b = run_study(study, tmp_path / "there", progress=there, scheduler="local", n_workers=2)
    for f in OUTPUTS:  # bit for bit: the same seeds, the same fits
        assert (tmp_path / "here" / f).read_bytes() == (tmp_path / "there" / f).read_bytes(), f
    pd.testing.assert_frame_equal(a.oof, b.oof, check_exact=True)
    # progress: once per split, in split order, in this process
    assert there.calls == here.calls
    assert {pid for _, pid in there.calls} == {os.getpid()}
    assert sum(d == "cross-validating linear" for d, _ in there.calls) == 4


def test_out_of_fold_fits_run_on_the_workers_and_come_back_in_order():
    import joblib
    from dask.distributed import get_task_stream
    from sklearn.ensemble import RandomForestClassifier

    from pmed.evaluate.cv import make_splits, out_of_fold_predictions
    from pmed.scale import dask_client

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"),
                     index=pd.Index([f"P{i:03d}" for i in range(120)], name="patient_id"))
    y = pd.Series((X["a"] + rng.normal(size=120) > 0).astype(int), index=X.index)
    splits = make_splits(y.to_numpy(), task="binary", folds=3, repeats=2, seed=1)

    def run():
        seen = []
        forest = RandomForestClassifier(n_estimators=5, n_jobs=1, random_state=0)
        oof = out_of_fold_predictions(forest, X, y, splits, task="binary",
                                      on_fold=lambda r, f, est: seen.append((r, f, est, os.getpid())))
        return oof, seen

    local, seen_local = run()
    with dask_client("local", n_workers=2) as client, get_task_stream(client) as stream, \
            joblib.parallel_config(backend="dask", client=client):
        remote, seen_remote = run()
    # the fits were tasks of the cluster, at most one per split: the trees were not sent apart
    assert 0 < len(stream.data) <= len(splits)
    pd.testing.assert_frame_equal(local, remote, check_exact=True)
    assert [(r, f) for r, f, *_ in seen_remote] == [(r, f) for r, f, _, _ in splits]
    assert {pid for *_, pid in seen_remote} == {os.getpid()}
    for (_, _, e1, _), (_, _, e2, _) in zip(seen_local, seen_remote, strict=True):
        np.testing.assert_array_equal(e1.predict_proba(X), e2.predict_proba(X))  # the fitted models come back


def test_unreachable_scheduler_is_one_clear_error(clinical_files, tmp_path, capsys):
    study = write_study(tmp_path)
    code = main(["run", str(study), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == InputError.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err and "dask scheduler" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "says"), [(["--scheduler", "not an address"], "neither 'local' nor an address"),
                                            (["--scheduler", "local", "--workers", "0"], "--workers")])
def test_bad_scheduler_options_are_refused_before_any_work(clinical_files, tmp_path, capsys, args, says):
    study = write_study(tmp_path)
    code = main(["run", str(study), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_dask_names_the_extra(monkeypatch):
    from pmed.scale import dask_client

    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    with pytest.raises(MissingDependencyError, match=r"pmed\[scale\]"), dask_client("local"):
        pass
    with pytest.raises(OptionError, match="n_workers"), dask_client("local", n_workers=0):
        pass


def test_prs_get_client_is_the_general_one():
    from pmed.genomics.prs.distributed import get_client

    with pytest.raises(OptionError, match="neither 'local' nor an address"):
        get_client("x y")
