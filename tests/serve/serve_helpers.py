"""Helpers of the ``pmed serve`` tests: a small trained bundle and tokens (not collected)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd

from conftest import SCHEMA_YAML, make_clinical, write_study

#: The ID of every new patient the tests score (looked for in the audit trail, where it must not be).
NEW_IDS = [f"NEWPT{i}" for i in range(4)]


def train_bundle(folder: Path) -> dict[str, Path]:
    """Train the small binary study of ``tests/conftest.py`` in ``folder``; return its paths.

    ``models`` (the folder to serve: holds ``out/model``), ``bundle`` and ``new`` (4 new patients).
    """
    from pmed.study import run_study

    data = folder / "data"
    data.mkdir(parents=True)
    make_clinical().to_csv(data / "patients.csv", index=False)
    (data / "schema.yaml").write_text(SCHEMA_YAML)
    new = make_clinical(4, seed=99).drop(columns=["event", "sbp"])
    new["patient_id"] = NEW_IDS
    new.to_csv(data / "new_patients.csv", index=False)
    models = folder / "models"
    run_study(write_study(data, models=("linear",)), models / "out")
    return {"models": models, "bundle": models / "out" / "model", "new": data / "new_patients.csv"}


def patient_rows(csv: Path) -> list[dict]:
    """The patients of a CSV as JSON objects (missing values as null), as a client sends them."""
    return json.loads(pd.read_csv(csv).to_json(orient="records"))


def expire(engine, token: str) -> None:
    """Move a token's expiry into the past."""
    from sqlalchemy.orm import Session

    from pmed.serve.db import Token, hash_token, utcnow

    with Session(engine) as s, s.begin():
        tok = s.query(Token).filter_by(token_sha256=hash_token(token)).one()
        tok.expires_at = utcnow() - timedelta(seconds=1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
