"""The service's database: tables, migrations (Alembic) and tokens.

The database holds **patient data** (the input rows of every stored prediction, table
``predictions``) beside the model registry, the hashed tokens and the audit trail: protect it as
any clinical record store (access control, encryption at rest, backups under the same rules).

Tables
------
models
    What each name serves now: the bundle's path, SHA-256 of its ``SHA256SUMS``, task, target,
    the validation metrics of the manifest, its ``version``, when and by whom registered.
model_versions
    Every bundle ever registered under a name: version (1, 2, … in order of registration),
    path, SHA-256, the SHA-256 of the bundle it was updated from (``pmed update``), the
    decision of its ``promotion.json``, when and by whom registered. Rolling back is serving
    an earlier version (:func:`pmed.serve.registry.serve_version`).
tokens
    Bearer tokens, only as their SHA-256: user, role (``clinician`` or ``admin``), created,
    expires.
audit
    One row per request: time, user, route, method, model and its SHA-256, SHA-256 of the request
    body, status code and outcome. Hashes only, never a patient value or ID.
predictions
    What is needed to re-render a prediction's patient report: model name and SHA-256 and the
    input rows as JSON.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from pmed.errors import OptionError

__all__ = ["Base", "Model", "ModelVersion", "Token", "Audit", "Prediction", "ROLES", "make_engine", "upgrade",
           "prepare_database", "create_token", "first_run_token", "find_token", "hash_token", "utcnow"]

#: The roles a token may have: clinicians predict and read; admins also register models and read the audit.
ROLES = ("clinician", "admin")
#: Prefix of every token (so that a leaked one is recognisable by secret scanners).
TOKEN_PREFIX = "pmed_"
_MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def as_utc(t: datetime) -> datetime:
    """``t`` as aware UTC (SQLite returns naive datetimes for what was stored as UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the service's tables (the Alembic revisions create them)."""


class Model(Base):
    """A registered model bundle."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    task: Mapped[str] = mapped_column(String(32), nullable=False)
    target: Mapped[str | None] = mapped_column(String(200))
    metrics: Mapped[dict | None] = mapped_column(JSON)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    registered_by: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int | None] = mapped_column(Integer)


class ModelVersion(Base):
    """A bundle registered under a model's name: one of its versions (serving or not)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    parent_sha256: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str | None] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(32), nullable=False)
    target: Mapped[str | None] = mapped_column(String(200))
    metrics: Mapped[dict | None] = mapped_column(JSON)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    registered_by: Mapped[str | None] = mapped_column(String(200))


class Token(Base):
    """A bearer token, stored as its SHA-256 only."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Audit(Base):
    """One request: who, what, on which model and input (hashes), and how it ended."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    user: Mapped[str | None] = mapped_column(String(200))
    route: Mapped[str] = mapped_column(Text, nullable=False)
    method: Mapped[str] = mapped_column(String(16), nullable=False)
    model: Mapped[str | None] = mapped_column(String(200))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(String(64), nullable=False)


class Prediction(Base):
    """A stored prediction: the input rows (patient data) and the model that scored them."""

    __tablename__ = "predictions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    user: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    model_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    rows: Mapped[list] = mapped_column(JSON, nullable=False)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///file.sqlite`` or ``postgresql+psycopg://…``).

    SQLite connections are shared across FastAPI's worker threads (``check_same_thread`` off) and
    wait for a writer rather than fail at once (``timeout``).
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_wal)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_wal(dbapi_connection, _record) -> None:
    # write-ahead log: a commit appends to one file and syncs it once (the default rollback
    # journal syncs three times), and readers do not wait for the writer; synchronous=FULL
    # keeps every committed audit row through a crash or a power cut
    cur = dbapi_connection.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
    finally:
        cur.close()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (``alembic upgrade head``, run in-process)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        # the connection itself goes to env.py: no URL through ConfigParser (which reads '%')
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def prepare_database(url: str) -> Engine:
    """Open the database at ``url`` and migrate it to the newest schema.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///pmed-serve.sqlite`` or ``postgresql+psycopg://user@host/db``.

    Returns
    -------
    sqlalchemy.Engine
        The migrated database's engine.
    """
    engine = make_engine(url)
    upgrade(engine)
    return engine


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: Engine | str, *, role: str, user: str = "user", days: float = 90) -> str:
    """Create a bearer token; only its SHA-256 is stored.

    Parameters
    ----------
    engine
        The database (engine or URL; a URL is migrated first).
    role
        ``clinician`` or ``admin``.
    user
        Who the token is for (written to every audit row of its requests).
    days
        Days until it expires (> 0).

    Returns
    -------
    str
        The token: shown once, never stored in clear.

    Raises
    ------
    OptionError
        Unknown role, empty user, or ``days`` not positive.
    """
    if role not in ROLES:
        raise OptionError(f"unknown role {role!r}", fix=f"use one of {', '.join(ROLES)}")
    if not str(user).strip():
        raise OptionError("the user name is empty", fix="give --user NAME")
    if not days > 0:
        raise OptionError(f"days must be > 0, got {days}", fix="give --days N with N > 0")
    if isinstance(engine, str):
        engine = prepare_database(engine)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with Session(engine) as s, s.begin():
        s.add(Token(user=str(user).strip(), role=role, token_sha256=hash_token(token), created_at=now,
                    expires_at=now + timedelta(days=days)))
    return token


def first_run_token(engine: Engine, *, days: float = 1.0) -> str | None:
    """An admin token for user ``first-run`` when the database holds no token at all, else ``None``.

    How a new service is signed in to the first time (``pmed serve --models DIR`` on a new
    database): the token is printed once at start-up. A database that holds any token, even an
    expired one, gets none: a deployment creates its tokens with ``pmed serve token create``.
    """
    from sqlalchemy import func

    with Session(engine) as s:
        if s.scalar(select(func.count()).select_from(Token)):
            return None
    return create_token(engine, role="admin", user="first-run", days=days)


def find_token(session: Session, token: str) -> Token | None:
    """The stored token matching ``token`` (by its SHA-256), or ``None``."""
    return session.scalar(select(Token).where(Token.token_sha256 == hash_token(token)))
