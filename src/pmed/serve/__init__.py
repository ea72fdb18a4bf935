"""``pmed serve``: a secured HTTP service over pmed's model bundles (FastAPI, SQLAlchemy, Alembic).

Nothing here is imported by ``import pmed``: the web stack (the ``serve`` extra) is loaded only
when :func:`create_app` or the CLI needs it.

Workers are stateless: the registry of models, the tokens, the audit trail and the stored
predictions all live in the database (SQLite for one machine, PostgreSQL for several workers or
hosts). A worker holds only caches of loaded bundles (keyed by path and the SHA-256 of their
``SHA256SUMS``) and its own per-token rate limiter.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "prepare_database", "create_token"]


def __getattr__(name: str) -> Any:
    # lazily, so that ``import pmed.serve`` (and the CLI) does not import FastAPI or SQLAlchemy
    if name == "create_app":
        from pmed.serve.app import create_app

        return create_app
    if name in ("prepare_database", "create_token"):
        from pmed.serve import db

        return getattr(db, name)
    raise AttributeError(f"module 'pmed.serve' has no attribute {name!r}")
