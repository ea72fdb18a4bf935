"""The service's registry of model versions: updates of a model, which one serves, rollback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy.special import expit, logit

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import bearer, patient_rows, train_bundle  # noqa: E402

from conftest import make_clinical  # noqa: E402
from pmed.monitor.update import update_bundle  # noqa: E402
from pmed.serve import create_app, create_token  # noqa: E402
from pmed.study import load_bundle  # noqa: E402


def _new_patients(bundle, n: int, seed: int, shift: float):
    """New patients whose events follow the bundle's probability with ``shift`` added on the logit."""
    df = make_clinical(n, seed=seed).drop(columns=["sbp", "event"])
    df["patient_id"] = [f"U{i:05d}" for i in range(n)]
    p = load_bundle(bundle).predict(df.set_index("patient_id"))["probability"].to_numpy()
    df["event"] = (np.random.default_rng(seed + 1000).random(n) < expit(logit(p) + shift)).astype(int)
    return df


@pytest.fixture(scope="module")
def lineage(tmp_path_factory):
    """A parent bundle and two updates of it under the served folder: one promoted, one not."""
    root = tmp_path_factory.mktemp("versions")
    paths = train_bundle(root)
    parent = paths["bundle"]
    # as tests/monitor/test_monitor_update.py: drifted events (+1 on the logit) promote the
    # recalibration; events that follow the parent's own probabilities keep it a candidate
    for folder, seed, shift in (("promoted", 3, 1.0), ("candidate", 11, 0.0)):
        data = root / f"{folder}.csv"
        _new_patients(parent, 1200, seed, shift).to_csv(data, index=False)
        res = update_bundle(parent, data, outcome="event", out=paths["models"] / folder, n_boot=100)
        assert res["decision"] == folder, res["reasons"]
    return paths


def test_updates_become_versions_and_only_the_promoted_one_serves(lineage, tmp_path):
    from pmed.serve.registry import list_versions, serve_version

    app = create_app(lineage["models"], f"sqlite:///{tmp_path / 's.sqlite'}", registry_cache_seconds=0)
    c = TestClient(app)
    admin = bearer(create_token(app.state.engine, role="admin", user="ada"))
    clin = bearer(create_token(app.state.engine, role="clinician", user="cleo"))
    models = c.get("/api/models", headers=clin).json()
    # one name: the updates lie beside their parent and are its versions, not new models
    assert [m["name"] for m in models] == ["test-event"]
    vs = c.get("/api/models/test-event/versions", headers=clin).json()
    assert [v["version"] for v in vs] == [1, 2, 3]
    by_decision = {v["decision"]: v for v in vs}
    assert set(by_decision) == {None, "promoted", "candidate"}
    parent_sha = by_decision[None]["sha256"]
    assert by_decision["promoted"]["parent_sha256"] == by_decision["candidate"]["parent_sha256"] == parent_sha
    assert [v["serving"] for v in vs].count(True) == 1 and by_decision["promoted"]["serving"]
    assert models[0]["version"] == by_decision["promoted"]["version"]

    body = {"patients": patient_rows(lineage["new"])}
    r = c.post("/api/models/test-event/predict", json=body, headers=clin)
    assert r.status_code == 200 and r.json()["model_sha256"] == by_decision["promoted"]["sha256"]
    promoted_p = [p["probability"] for p in r.json()["predictions"]]
    pid = r.json()["prediction_id"]

    # rollback: the parent serves again; a clinician may not choose, an admin may
    v1 = by_decision[None]["version"]
    assert c.post("/api/models/test-event/serve", json={"version": v1}, headers=clin).status_code == 403
    r = c.post("/api/models/test-event/serve", json={"version": v1}, headers=admin)
    assert r.status_code == 200 and r.json()["version"] == v1 and r.json()["sha256"] == parent_sha
    r = c.post("/api/models/test-event/predict", json=body, headers=clin)
    parent_p = load_bundle(lineage["bundle"]).predict(
        make_clinical(4, seed=99).drop(columns=["event", "sbp"]).assign(
            patient_id=[p["patient_id"] for p in r.json()["predictions"]]).set_index("patient_id"))["probability"]
    np.testing.assert_allclose([p["probability"] for p in r.json()["predictions"]], parent_p.to_numpy())
    assert r.json()["model_version"] == v1 and not np.allclose(promoted_p, parent_p.to_numpy())
    # the report of the earlier prediction is still rendered by the version that made it
    assert c.get(f"/api/predictions/{pid}/report", headers=clin).status_code == 200

    # a restart registers the folder again and keeps the rollback
    app2 = create_app(lineage["models"], f"sqlite:///{tmp_path / 's.sqlite'}")
    assert list_versions(app2.state.engine, "test-event")[1] == v1
    assert len(list_versions(app2.state.engine, "test-event")[0]) == 3

    bad = [(999, 404), (0, 422)]
    for version, code in bad:
        r = c.post("/api/models/test-event/serve", json={"version": version}, headers=admin)
        assert r.status_code == code, r.text
    assert c.get("/api/models/nope/versions", headers=clin).status_code == 404
    # a version whose bundle changed on disk cannot be chosen
    cand = by_decision["candidate"]
    with pytest.raises(Exception, match="SHA-256|changed"):
        manifest = lineage["models"] / "candidate" / "model" / "manifest.json"
        saved = manifest.read_text()
        try:
            manifest.write_text(saved.replace('"binary"', '"continuous"'))
            serve_version(app.state.engine, "test-event", cand["version"])
        finally:
            manifest.write_text(saved)


def test_an_unrelated_bundle_of_the_same_name_is_refused_and_a_copy_by_hand_may_serve(lineage, tmp_path):
    from pmed.serve.registry import NameTakenError, register_bundle

    app = create_app(lineage["models"], f"sqlite:///{tmp_path / 's.sqlite'}", registry_cache_seconds=0)
    engine = app.state.engine
    copy = tmp_path / "copy" / "model"
    shutil.copytree(lineage["bundle"], copy)
    # a copy of the parent at another path is not an update of it (no parent hash): refused
    with pytest.raises(NameTakenError, match="taken"):
        register_bundle(engine, copy, name="test-event")
    # the candidate, registered explicitly to serve, serves
    v = register_bundle(engine, lineage["models"] / "candidate" / "model", name="test-event", serve=True)
    c = TestClient(app)
    clin = bearer(create_token(engine, role="clinician", user="cleo"))
    assert c.get("/api/models", headers=clin).json()[0]["version"] == v.version
    assert json.loads((lineage["models"] / "candidate" / "promotion.json").read_text())["decision"] == "candidate"


def test_cli_lists_versions_and_rolls_back(lineage, tmp_path, capsys):
    from pmed.cli import main

    db = f"sqlite:///{tmp_path / 's.sqlite'}"
    create_app(lineage["models"], db)
    capsys.readouterr()
    assert main(["serve", "versions", "test-event", "--db", db]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and sum("serving" in x for x in lines) == 1 and any("candidate" in x for x in lines)
    assert main(["serve", "use", "test-event", "--version", "1", "--db", db]) == 0
    assert "now serves version 1" in capsys.readouterr().out
    assert main(["serve", "use", "test-event", "--version", "7", "--db", db]) != 0
    assert "no version 7 (it has 1, 2, 3)" in capsys.readouterr().err


def _migrate_from_0001(url: str, bundle) -> None:
    """A database made before versions existed, with one model registered, upgraded to head."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from pmed.serve.db import _MIGRATIONS, Model, ModelVersion, make_engine, upgrade

    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql(
            "INSERT INTO models (name, path, sha256, task, target, registered_at) "
            f"VALUES ('old', '{bundle}', '{'a' * 64}', 'binary', 'event', '2026-01-01 00:00:00')")
    upgrade(engine)
    with Session(engine) as s:
        m = s.scalar(select(Model).where(Model.name == "old"))
        v = s.scalars(select(ModelVersion)).one()
    assert m.version == 1 and (v.name, v.version, v.sha256, v.path) == ("old", 1, "a" * 64, str(bundle))
    engine.dispose()


def test_a_database_from_before_versions_keeps_its_models_as_version_1(lineage, tmp_path):
    _migrate_from_0001(f"sqlite:///{tmp_path / 'old.sqlite'}", lineage["bundle"])
