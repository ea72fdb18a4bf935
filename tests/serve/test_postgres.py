"""The registry and the audit trail on PostgreSQL (a throwaway server started by the fixture)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import NEW_IDS, bearer, patient_rows, train_bundle  # noqa: E402


@pytest.fixture(scope="module")
def pg_url():
    from pmed.serve.testing import throwaway_postgres

    try:
        server = throwaway_postgres()
        url = server.__enter__()
    except RuntimeError as e:
        pytest.skip(str(e))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


def test_registry_and_audit_on_postgres(pg_url, tmp_path):
    from sqlalchemy import inspect, select
    from sqlalchemy.orm import Session

    from pmed.serve import create_app, create_token
    from pmed.serve.db import Audit, Model

    paths = train_bundle(tmp_path)
    app = create_app(paths["models"], pg_url)
    engine = app.state.engine
    assert engine.dialect.name == "postgresql"
    assert {"models", "tokens", "audit", "predictions", "alembic_version"} <= set(inspect(engine).get_table_names())
    c = TestClient(app)
    admin = bearer(create_token(engine, role="admin", user="ada"))
    assert c.get("/api/models").status_code == 401
    r = c.post("/api/models/test-event/predict", json={"patients": patient_rows(paths["new"])}, headers=admin)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 4
    assert c.get(f"/api/predictions/{r.json()['prediction_id']}/report", headers=admin).status_code == 200
    # a second app on the same database (another worker): it sees the registry, migrates nothing
    other = TestClient(create_app(paths["models"], pg_url, init=False))
    assert [m["name"] for m in other.get("/api/models", headers=admin).json()] == ["test-event"]
    with Session(engine) as s:
        assert s.scalar(select(Model.task).where(Model.name == "test-event")) == "binary"
        rows = s.scalars(select(Audit).order_by(Audit.id)).all()
        assert [a.status_code for a in rows] == [401, 200, 200, 200]
        assert rows[1].model == "test-event" and rows[1].user == "ada" and len(rows[1].input_sha256) == 64
        text = " ".join(str(getattr(a, col.name)) for a in rows for col in Audit.__table__.columns)
    assert not any(pid in text for pid in NEW_IDS)
    # the schema is migrated once: running it again is a no-op
    create_app(paths["models"], pg_url)


def test_versions_migration_on_postgres(pg_url, tmp_path):
    from sqlalchemy import create_engine, text
    from test_serve_versions import _migrate_from_0001

    with create_engine(pg_url).begin() as conn:  # a fresh schema: the other test migrated this one
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    _migrate_from_0001(pg_url, tmp_path / "model")
