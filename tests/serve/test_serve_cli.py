"""``pmed serve`` and ``pmed serve token create`` through the CLI entry point."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import bearer, train_bundle  # noqa: E402

from pmed.cli import main  # noqa: E402
from pmed.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_bundle(tmp_path_factory.mktemp("serve-cli"))


def test_token_create_prints_a_working_token_last(trained, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert main(["serve", "token", "create", "--db", url, "--role", "clinician", "--user", "dora",
                 "--days", "2"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("pmed_") and len(token) > 40
    c = TestClient(create_app(trained["models"], url))
    r = c.get("/api/models", headers=bearer(token))
    assert r.status_code == 200 and [m["name"] for m in r.json()] == ["test-event"]
    assert c.get("/api/audit", headers=bearer(token)).status_code == 403  # a clinician's
    # stored hashed: the token itself is nowhere in the database file
    assert token.encode() not in (tmp_path / "cli.sqlite").read_bytes()
    assert main(["serve", "token", "create", "--db", url, "--role", "root"]) == 2
    assert main(["serve", "token", "create", "--db", url, "--role", "admin", "--days", "0"]) == 2


def test_serve_runs_uvicorn_with_the_factory(trained, tmp_path, monkeypatch, capsys):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    for k in ("MODELS", "DB", "MAX_BODY_BYTES", "RATE_LIMIT", "CORS_ORIGINS", "INIT"):
        monkeypatch.setenv(f"PMED_SERVE_{k}", "")  # so that the command's values are undone after the test
    url = f"sqlite:///{tmp_path / 'run.sqlite'}"
    assert main(["serve", "--models", str(trained["models"]), "--db", url, "--port", "8123", "--workers", "3",
                 "--rate-limit", "7"]) == 0
    assert "1 model(s) registered: test-event" in capsys.readouterr().out
    assert seen["app"] == "pmed.serve.app:app_from_env" and seen["factory"] is True
    assert (seen["port"], seen["workers"], seen["access_log"]) == (8123, 3, False)
    import os

    assert os.environ["PMED_SERVE_INIT"] == "0" and os.environ["PMED_SERVE_RATE_LIMIT"] == "7"
    # what each worker builds: the database migrated and the registry filled once, by the command
    from pmed.serve.app import app_from_env

    app = app_from_env()
    from pmed.serve import create_token

    tok = create_token(app.state.engine, role="admin", user="x")
    assert [m["name"] for m in TestClient(app).get("/api/models", headers=bearer(tok)).json()] == ["test-event"]
    assert main(["serve", "--port", "8123"]) == 2  # no --models


def test_first_start_prints_an_admin_token_once(trained, tmp_path, monkeypatch, capsys):
    """A new database has no token to sign in with: the first start prints one (as Jupyter's), later ones do not."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    for k in ("MODELS", "DB", "MAX_BODY_BYTES", "RATE_LIMIT", "CORS_ORIGINS", "INIT"):
        monkeypatch.setenv(f"PMED_SERVE_{k}", "")
    url = f"sqlite:///{tmp_path / 'first.sqlite'}"
    assert main(["serve", "--models", str(trained["models"]), "--db", url, "--port", "8124"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "Open http://localhost:8124/" in out[-2]
    token = out[-1]
    c = TestClient(create_app(trained["models"], url))
    assert c.get("/api/audit", headers=bearer(token)).status_code == 200  # an admin's
    assert main(["serve", "--models", str(trained["models"]), "--db", url, "--port", "8124"]) == 0
    again = capsys.readouterr().out
    assert token not in again and "pmed_" not in again and "sign in with a token of pmed serve token create" in again
