"""Which model bundles the service offers: found under a folder, verified, registered in the DB."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pmed.errors import BundleError, NotFoundError
from pmed.serve.db import Model, ModelVersion, utcnow
from pmed.study.bundle import SUMS_NAME, ModelBundle, _sha256, load_bundle

__all__ = ["find_bundles", "bundle_name", "register_bundle", "register_folder", "list_versions", "serve_version",
           "NameTakenError", "BundleCache", "RowCache"]

log = logging.getLogger("pmed.serve")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _clean(name: str) -> str:
    # names go into URLs (/api/models/{name}/predict): letters, digits, '.', '_', '-' only
    return _UNSAFE.sub("-", name).strip("-.") or "model"


def find_bundles(models_dir: str | Path) -> list[Path]:
    """Every bundle folder (``manifest.json`` beside ``SHA256SUMS``) under ``models_dir``, sorted;
    none inside a hidden folder (a name starting with '.')."""
    root = Path(models_dir)
    # hidden folders are skipped: pmed stages its outputs in '.name.xxxx.tmp' beside them, and a
    # server started while a study runs must not register the half-written copy
    return sorted(p.parent for p in root.rglob("manifest.json") if (p.parent / SUMS_NAME).is_file()
                  and (p.parent / "pipeline.skops").is_file()
                  and not any(part.startswith(".") for part in p.parent.relative_to(root).parts))


def bundle_name(folder: str | Path) -> str:
    """A bundle's name: the ``name:`` of the study that wrote it (else its output folder's name)."""
    import yaml

    folder = Path(folder)
    try:
        study = yaml.safe_load((folder / "study.yaml").read_text(encoding="utf-8"))
        name = study.get("name") if isinstance(study, dict) else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        name = None
    return _clean(str(name) if name else folder.resolve().parent.name)


def _row(bundle: ModelBundle, name: str, user: str | None) -> dict:
    m = bundle.manifest
    return {"name": name, "path": str(bundle.path.resolve()), "sha256": _sha256(bundle.path / SUMS_NAME),
            "task": m["task"], "target": m.get("target"), "metrics": m.get("metrics"),
            "registered_at": utcnow(), "registered_by": user}


def _decision(bundle: ModelBundle, sha256: str) -> str | None:
    """The decision of the ``promotion.json`` that ``pmed update`` wrote beside this bundle, if any."""
    try:
        prom = json.loads((bundle.path.parent / "promotion.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(prom, dict) or (prom.get("candidate") or {}).get("sha256") != sha256:
        return None  # a promotion.json about another bundle says nothing of this one
    decision = prom.get("decision")
    return decision if isinstance(decision, str) else None


class NameTakenError(BundleError):
    """A model name is registered for a bundle that this one is neither a version nor an update of."""


def register_bundle(engine: Engine, folder: str | Path, *, name: str | None = None,
                    user: str | None = None, serve: bool | None = None) -> ModelVersion:
    """Verify a bundle (:func:`~pmed.study.bundle.load_bundle`) and register it as a version of its name.

    The first bundle of a name is its version 1 and serves. A later bundle becomes the name's
    next version when it was retrained at the same path, or when it is an update of one of the
    name's versions (``pmed update``: its manifest's ``parent`` hash is that version's). Whether
    it then serves: ``serve`` when given; else a bundle retrained in place serves, and an update
    serves only when its ``promotion.json`` says ``promoted`` (a ``candidate`` is registered
    but not served). A bundle already registered (same path, same hash) is left as it is, so a
    restart keeps a rollback.

    Returns
    -------
    pmed.serve.db.ModelVersion
        The version row of this bundle.

    Raises
    ------
    BundleError
        The folder is not a loadable, intact bundle; :class:`NameTakenError` when its name is
        taken by an unrelated bundle.
    """
    folder = Path(folder)
    bundle = load_bundle(folder)  # verifies SHA256SUMS before anything is written
    name = _clean(name) if name else bundle_name(folder)
    row = _row(bundle, name, user)
    parent = (bundle.manifest.get("parent") or {}).get("sha256")
    decision = _decision(bundle, row["sha256"])
    with Session(engine, expire_on_commit=False) as s, s.begin():
        current = s.scalar(select(Model).where(Model.name == name))
        versions = list(s.scalars(select(ModelVersion).where(ModelVersion.name == name)))
        same = next((v for v in versions if v.path == row["path"] and v.sha256 == row["sha256"]), None)
        if same is not None:
            version, new = same, False
        else:
            related = row["path"] in {v.path for v in versions} or parent in {v.sha256 for v in versions}
            if current is not None and current.path != row["path"] and not related:
                raise NameTakenError(
                    f"the name {name!r} is taken by another registered bundle", file=folder,
                    fix="rename the study (its 'name:'), register it under another name, or register the "
                        "bundle it was updated from first")
            version = ModelVersion(name=name, version=max((v.version for v in versions), default=0) + 1,
                                   parent_sha256=parent, decision=decision,
                                   **{k: row[k] for k in ("path", "sha256", "task", "target", "metrics",
                                                          "registered_at", "registered_by")})
            s.add(version)
            new = True
        if serve is None:
            serve = current is None or (new and (current.path == row["path"] or decision == "promoted"))
        if serve:
            if current is None:
                current = Model(**row, version=version.version)
                s.add(current)
            else:
                for k, v in row.items():
                    setattr(current, k, v)
                current.version = version.version
    return version


def list_versions(engine: Engine, name: str) -> tuple[list[ModelVersion], int | None]:
    """The versions registered under ``name`` (oldest first) and the one that serves.

    Raises
    ------
    NotFoundError
        No model of that name is registered.
    """
    with Session(engine, expire_on_commit=False) as s:
        current = s.scalar(select(Model).where(Model.name == name))
        versions = list(s.scalars(select(ModelVersion).where(ModelVersion.name == name)
                                  .order_by(ModelVersion.version)))
    if current is None and not versions:
        raise NotFoundError(f"no model named {name!r} is registered", fix="GET /api/models lists the models")
    return versions, current.version if current is not None else None


def serve_version(engine: Engine, name: str, version: int, *, user: str | None = None) -> Model:
    """Serve version ``version`` of ``name`` from now on (a promotion by hand, or a rollback).

    The bundle is verified again (it must be on disk, unchanged since it was registered).

    Raises
    ------
    NotFoundError
        No such name or version.
    BundleError
        The version's bundle is gone or was modified since it was registered.
    """
    with Session(engine, expire_on_commit=False) as s:
        v = s.scalar(select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version))
    if v is None:
        versions, _ = list_versions(engine, name)  # NotFoundError for an unknown name
        raise NotFoundError(f"model {name!r} has no version {version} (it has "
                            f"{', '.join(str(x.version) for x in versions)})", where="version",
                            fix=f"GET /api/models/{name}/versions lists them")
    bundle = load_bundle(v.path)
    if _sha256(bundle.path / SUMS_NAME) != v.sha256:
        raise BundleError(f"version {version} of model {name!r} changed on disk since it was registered",
                          file=v.path, fix="register the bundle again: it becomes a new version")
    with Session(engine, expire_on_commit=False) as s, s.begin():
        current = s.scalar(select(Model).where(Model.name == name))
        row = {"name": name, "path": v.path, "sha256": v.sha256, "task": v.task, "target": v.target,
               "metrics": v.metrics, "registered_at": utcnow(), "registered_by": user, "version": v.version}
        if current is None:
            current = Model(**row)
            s.add(current)
        else:
            for k, val in row.items():
                setattr(current, k, val)
    log.info("model %s now serves version %d", name, version)
    return current


def _version_order(folder: Path) -> tuple[int, str]:
    # a parent before its updates: an update's parent must be registered when it is
    try:
        v = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("model_version")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        v = None
    return (v if isinstance(v, int) else 1, str(folder))


def register_folder(engine: Engine, models_dir: str | Path) -> list[str]:
    """Register every bundle under ``models_dir``; return the names registered.

    Bundles are registered parents first, so an update (``pmed update``'s ``OUT/model``) lying
    beside its parent becomes the parent's next version (served if promoted). Two unrelated
    bundles of studies with the same name are told apart by their output folder's name
    (``name-folder``). A bundle that does not load is skipped with a warning in the log (which
    names the folder and the reason, never patient data), so one broken bundle does not keep the
    service down.
    """
    folders = sorted(find_bundles(models_dir), key=_version_order)
    out = []
    for folder in folders:
        name = bundle_name(folder)
        try:
            try:
                register_bundle(engine, folder, name=name)
            except NameTakenError:
                name = _clean(f"{name}-{folder.resolve().parent.name}")
                register_bundle(engine, folder, name=name)
        except BundleError as e:
            log.warning("skipped bundle %s: %s", folder, e.message)
            continue
        if name not in out:
            out.append(name)
    return out


class RowCache:
    """Rows of the database this worker read in the last ``ttl`` seconds (thread-safe).

    A request needs its token's row and its model's row; reading both from the database every
    time costs more than the prediction (two round trips, on PostgreSQL two more pool pings).
    The database stays the only authority: a row is read again once it is ``ttl`` seconds old,
    so a model registered or a token created through another worker (or the CLI) is seen
    within ``ttl``; what is not found is not remembered.
    """

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._rows: dict = {}

    def get(self, key, load):
        """The row ``load()`` gave for ``key`` less than ``ttl`` seconds ago, else ``load()`` now."""
        now = time.monotonic()
        with self._lock:
            hit = self._rows.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        row = load()
        with self._lock:
            if row is None:
                self._rows.pop(key, None)
            else:
                self._rows[key] = (now, row)
        return row

    def forget(self, key) -> None:
        with self._lock:
            self._rows.pop(key, None)


class BundleCache:
    """Loaded bundles of this worker, by path and SHA-256 of ``SHA256SUMS`` (thread-safe).

    The only per-worker state beside the rate limiter and the :class:`RowCache` of registry
    rows: the registry itself is in the database, so a model registered through one worker is
    found by every other (within the row cache's second).
    """

    def __init__(self, ttl: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], ModelBundle] = {}
        self.rows = RowCache(ttl)

    def get(self, engine: Engine, name: str) -> tuple[Model, ModelBundle]:
        """The registered model ``name`` and its loaded bundle.

        Raises
        ------
        NotFoundError
            No model of that name is registered.
        BundleError
            The bundle on disk no longer matches what was registered (modified or retrained
            since); register it again to serve the new version.
        """
        def read() -> Model | None:
            with Session(engine, expire_on_commit=False) as s:
                return s.scalar(select(Model).where(Model.name == name))

        model = self.rows.get(name, read)
        if model is None:
            raise NotFoundError(f"no model named {name!r} is registered", fix="GET /api/models lists the models")
        path = Path(model.path)
        try:
            now = _sha256(path / SUMS_NAME)
        except OSError:
            now = None
        if now != model.sha256:  # registered again since this worker read the row?
            self.rows.forget(name)
            model = self.rows.get(name, read)
        if model is None:
            raise NotFoundError(f"no model named {name!r} is registered", fix="GET /api/models lists the models")
        if now != model.sha256:
            raise BundleError(f"the bundle of model {name!r} changed on disk since it was registered",
                              fix="register it again (POST /api/models) to serve the new version")
        return model, self._load(name, path, model.sha256)

    def _load(self, name: str, path: Path, sha256: str) -> ModelBundle:
        key = (str(path), sha256)
        with self._lock:
            bundle = self._loaded.get(key)
        if bundle is None:
            bundle = load_bundle(path)
            if _sha256(path / SUMS_NAME) != sha256:  # replaced while it was being loaded
                raise BundleError(f"the bundle of model {name!r} changed on disk since it was registered",
                                  fix="register it again (POST /api/models) to serve the new version")
            with self._lock:
                self._loaded[key] = bundle
        return bundle

    def version(self, engine: Engine, name: str, sha256: str) -> ModelBundle | None:
        """The bundle of the version of ``name`` with this SHA-256, if registered and unchanged on
        disk (a stored prediction's report is rendered by the version that made it)."""
        with Session(engine, expire_on_commit=False) as s:
            v = s.scalars(select(ModelVersion).where(ModelVersion.name == name, ModelVersion.sha256 == sha256)
                          .order_by(ModelVersion.version.desc())).first()
        if v is None:
            return None
        try:
            if _sha256(Path(v.path) / SUMS_NAME) != sha256:
                return None
            return self._load(name, Path(v.path), sha256)
        except (OSError, BundleError):
            return None
