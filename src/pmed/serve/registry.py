"""Which model bundles the service offers: found under a folder, verified, registered in the DB."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pmed.errors import BundleError, NotFoundError
from pmed.serve.db import Model, utcnow
from pmed.study.bundle import SUMS_NAME, ModelBundle, _sha256, load_bundle

__all__ = ["find_bundles", "bundle_name", "register_bundle", "register_folder", "BundleCache", "RowCache"]

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


def register_bundle(engine: Engine, folder: str | Path, *, name: str | None = None,
                    user: str | None = None) -> Model:
    """Verify a bundle (:func:`~pmed.study.bundle.load_bundle`) and register it.

    A bundle already registered at the same path is updated (re-registration after retraining);
    a name taken by another path is refused.

    Raises
    ------
    BundleError
        The folder is not a loadable, intact bundle, or its name is taken by another bundle.
    """
    folder = Path(folder)
    bundle = load_bundle(folder)  # verifies SHA256SUMS before anything is written
    name = _clean(name) if name else bundle_name(folder)
    row = _row(bundle, name, user)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        old = s.scalar(select(Model).where(Model.name == name))
        if old is not None and old.path != row["path"]:
            raise BundleError(f"the name {name!r} is taken by another registered bundle",
                              file=folder, fix="rename the study (its 'name:') or remove the other bundle")
        if old is None:
            old = Model(**row)
            s.add(old)
        else:
            for k, v in row.items():
                setattr(old, k, v)
    return old


def register_folder(engine: Engine, models_dir: str | Path) -> list[str]:
    """Register every bundle under ``models_dir``; return the names registered.

    Two bundles of studies with the same name are told apart by their output folder's name
    (``name-folder``). A bundle that does not load is skipped with a warning in the log (which
    names the folder and the reason, never patient data), so one broken bundle does not keep the
    service down.
    """
    folders = find_bundles(models_dir)
    names = [bundle_name(f) for f in folders]
    dup = {n for n in names if names.count(n) > 1}
    out = []
    for folder, name in zip(folders, names, strict=True):
        if name in dup:
            name = _clean(f"{name}-{folder.resolve().parent.name}")
        try:
            register_bundle(engine, folder, name=name)
        except BundleError as e:
            log.warning("skipped bundle %s: %s", folder, e.message)
            continue
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
        key = (model.path, model.sha256)
        with self._lock:
            bundle = self._loaded.get(key)
        if bundle is None:
            bundle = load_bundle(path)
            if _sha256(path / SUMS_NAME) != model.sha256:  # replaced while it was being loaded
                raise BundleError(f"the bundle of model {name!r} changed on disk since it was registered",
                                  fix="register it again (POST /api/models) to serve the new version")
            with self._lock:
                self._loaded[key] = bundle
        return model, bundle
