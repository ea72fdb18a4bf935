"""The FastAPI application of ``pmed serve`` (:func:`create_app`)."""

import json
import math
import os
import tempfile
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
import numpy as np
import pandas as pd
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Security,
    UploadFile,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pmed.errors import InputError, NotFoundError, OptionError
from pmed.serve import schemas as S
from pmed.serve.db import (
    Audit,
    Prediction,
    as_utc,
    find_token,
    hash_token,
    make_engine,
    prepare_database,
    utcnow,
)
from pmed.serve.middleware import AuditMiddleware, RateLimiter
from pmed.serve.problems import PROBLEM_JSON, install_handlers
from pmed.serve.registry import (
    BundleCache,
    RowCache,
    list_versions,
    register_bundle,
    register_folder,
    serve_version,
)

__all__ = ["create_app", "app_from_env", "ENV_PREFIX"]

#: Settings of :func:`app_from_env` (how ``pmed serve --workers N`` hands them to its workers).
ENV_PREFIX = "PMED_SERVE_"
FHIR_JSON = "application/fhir+json"
# matplotlib (the report's figures) is not thread-safe: one report is drawn at a time per worker
_REPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class Principal:
    """Who made the request (from the token)."""

    user: str
    role: str


def _problem_responses(*codes: int) -> dict:
    return {c: {"model": S.Problem, "content": {PROBLEM_JSON: {}}} for c in codes}


def _jsonable(v: Any) -> Any:
    """``v`` with NaN/inf as ``None`` and numpy/pandas scalars as Python ones (strict JSON)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def create_app(
    models_dir: str | Path,
    db_url: str = "sqlite:///pmed-serve.sqlite",
    *,
    max_body_bytes: int = 1_000_000,
    rate_limit_per_minute: int = 120,
    cors_origins: list[str] | None = None,
    init: bool = True,
    registry_cache_seconds: float = 1.0,
) -> FastAPI:
    """The ``pmed serve`` application.

    Parameters
    ----------
    models_dir
        Folder searched (recursively) for model bundles (``model/`` folders written by ``pmed run``);
        each is verified and registered under its study's name at startup.
    db_url
        SQLAlchemy URL of the database (``sqlite:///file.sqlite``, ``postgresql+psycopg://…``). It
        holds patient data (the rows of stored predictions): protect it.
    max_body_bytes
        Largest request body; larger ones get 413.
    rate_limit_per_minute
        Requests a token may make per minute on this worker; more get 429.
    cors_origins
        Origins allowed to call the API from a browser; ``None``: no CORS headers at all.
    init
        Migrate the database and register the bundles of ``models_dir`` now. ``pmed serve
        --workers N`` does it once before starting the workers, which then skip it.
    registry_cache_seconds
        How long a worker reuses a token's or a model's row read from the database
        (:class:`pmed.serve.registry.RowCache`): a token revoked or a model registered elsewhere
        is seen within this time. 0 reads the database on every request (slower, notably on
        PostgreSQL).

    Returns
    -------
    fastapi.FastAPI
        The application (run it with uvicorn).

    Raises
    ------
    OptionError
        A limit that is not positive, or ``models_dir`` not a folder.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise OptionError("the models folder does not exist or is not a folder", where=str(models_dir),
                          fix="give the folder holding the bundles written by 'pmed run' (--models)")
    if max_body_bytes < 1 or rate_limit_per_minute < 1 or not registry_cache_seconds >= 0:
        raise OptionError("max_body_bytes and rate_limit_per_minute must be positive, "
                          "registry_cache_seconds zero or more", fix="give positive limits")
    if init:
        engine = prepare_database(db_url)
        register_folder(engine, models_dir)
    else:
        engine = make_engine(db_url)
    app = FastAPI(
        title="pmed serve", version=_version(),
        description="Predictions, explanations, treatment options and pharmacogenomic calls from validated "
                    "pmed model bundles. Every route but /health needs a bearer token (pmed serve token create).",
        docs_url=None, redoc_url=None, openapi_url=None,  # served behind the token: /api/openapi.json
    )
    install_handlers(app)
    app.openapi = _openapi_document(app)
    app.state.engine = engine
    app.state.models_dir = models_dir
    app.add_middleware(AuditMiddleware, engine=engine, max_body_bytes=max_body_bytes)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.include_router(_router(app, engine, BundleCache(registry_cache_seconds),
                               RateLimiter(rate_limit_per_minute)))
    return app


def app_from_env() -> FastAPI:
    """:func:`create_app` with settings from ``PMED_SERVE_*`` variables (uvicorn's factory for workers)."""
    env = os.environ
    origins = [o for o in env.get(ENV_PREFIX + "CORS_ORIGINS", "").split(",") if o]
    return create_app(env[ENV_PREFIX + "MODELS"], env.get(ENV_PREFIX + "DB", "sqlite:///pmed-serve.sqlite"),
                      max_body_bytes=int(env.get(ENV_PREFIX + "MAX_BODY_BYTES", 1_000_000)),
                      rate_limit_per_minute=int(env.get(ENV_PREFIX + "RATE_LIMIT", 120)),
                      cors_origins=origins or None, init=env.get(ENV_PREFIX + "INIT", "1") != "0")


def _openapi_document(app: FastAPI):
    """``app.openapi`` with every error response documented as it is sent: ``application/problem+json``.

    FastAPI documents the errors of ``responses=`` as ``application/json`` and adds its own 422
    (``HTTPValidationError``), neither of which the service sends (schemathesis's content-type
    and schema checks found it). Every route behind the token also gets its 401, 413 and 429,
    every route with parameters or a body its 422, and every route with a path parameter its
    404 (an unknown model or prediction).
    """
    from http import HTTPStatus

    from fastapi.openapi.utils import get_openapi

    def build() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = S.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, ops in doc.get("paths", {}).items():
            for op in ops.values():
                res = op.setdefault("responses", {})
                codes = [] if path == "/health" else ["401", "413", "429"]
                if op.get("parameters") or op.get("requestBody"):
                    codes.append("422")
                if any(x.get("in") == "path" for x in op.get("parameters", [])):
                    codes.append("404")  # an unknown model or prediction
                for code in codes:
                    res.setdefault(code, {})
                for code, r in res.items():
                    if code[:1] in ("4", "5"):
                        r["content"] = dict(problem)
                        if not r.get("description") or r["description"] == "Validation Error":
                            r["description"] = HTTPStatus(int(code)).phrase
        text = str(doc["paths"])
        for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's, never sent
            if f"#/components/schemas/{name}'" not in text:
                schemas.pop(name, None)
        if "HTTPValidationError" not in schemas:
            schemas.pop("ValidationError", None)
        app.openapi_schema = doc
        return doc

    return build


def _version() -> str:
    from pmed import __version__

    return __version__


def _router(app: FastAPI, engine: Engine, cache: BundleCache, limiter: RateLimiter) -> APIRouter:
    bearer = HTTPBearer(auto_error=False, description="a token of 'pmed serve token create'")
    r = APIRouter()
    tokens = RowCache(cache.rows.ttl)  # a token's row, read at most once a second by this worker
    # the scoring is CPU work under the GIL: one request at a time, in arrival order, rather
    # than forty threads taking the GIL in turns (which starves the event loop and makes every
    # request as slow as the slowest); a worker process per core is how to use more cores
    cpu = anyio.CapacityLimiter(1)

    def principal(request: Request,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal:
        challenge = {"WWW-Authenticate": "Bearer"}
        if creds is None:
            request.state.outcome = "no-token"
            raise HTTPException(401, "a bearer token is required (Authorization: Bearer <token>)", headers=challenge)
        def read():
            with Session(engine) as s:
                return find_token(s, creds.credentials)

        tok = tokens.get(hash_token(creds.credentials), read)
        if tok is None:
            request.state.outcome = "bad-token"
            raise HTTPException(401, "Authorization: the bearer token is not known", headers=challenge)
        request.state.user = tok.user
        if as_utc(tok.expires_at) <= utcnow():
            request.state.outcome = "expired-token"
            raise HTTPException(401, "Authorization: the bearer token has expired; ask for a new one",
                                headers=challenge)
        wait = limiter.allow(tok.token_sha256)
        if wait is not None:
            request.state.outcome = "rate-limited"
            raise HTTPException(429, "too many requests with this token; retry later",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return Principal(tok.user, tok.role)

    def admin(request: Request, who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role != "admin":
            request.state.outcome = "forbidden"
            raise HTTPException(403, "this route is for admin tokens")
        return who

    Any_ = Annotated[Principal, Depends(principal)]
    Admin = Annotated[Principal, Depends(admin)]
    auth_errors = _problem_responses(401, 413, 429)

    @r.get("/health", response_model=S.Health, tags=["service"])
    def health() -> dict:
        """Liveness (no token needed)."""
        return {"status": "ok"}

    @r.get("/api/openapi.json", tags=["service"], responses=auth_errors)
    def openapi(who: Any_) -> dict:
        """This API's OpenAPI document."""
        return app.openapi()

    @r.get("/api/models", response_model=list[S.ModelOut], tags=["models"], responses=auth_errors)
    def list_models(who: Any_) -> list:
        """The registered models with their validation metrics."""
        from pmed.serve.db import Model

        with Session(engine) as s:
            return [_model_out(m) for m in s.scalars(select(Model).order_by(Model.name))]

    @r.post("/api/models", response_model=S.ModelOut, status_code=201, tags=["models"],
            responses=_problem_responses(400, 401, 403, 409, 413, 422, 429))
    def register(body: S.RegisterRequest, request: Request, who: Admin) -> dict:
        """Verify a bundle folder on the server (every file against its SHA256SUMS) and register it."""
        path = Path(body.path)
        try:
            is_dir = path.is_dir()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte (schemathesis found it)
            is_dir = False
        if not is_dir:
            raise InputError("no such folder on the server", where="path",
                             fix="give the bundle folder (DIR/model written by 'pmed run')")
        v = register_bundle(engine, path, name=body.name, user=who.user, serve=body.serve)
        request.state.model, request.state.model_sha256 = v.name, v.sha256
        _, serving = list_versions(engine, v.name)
        cache.rows.forget(v.name)
        return _version_as_model(v, serving)

    @r.get("/api/models/{name}/versions", response_model=list[S.VersionOut], tags=["models"],
           responses=_problem_responses(401, 404, 429))
    def versions(name: str, who: Any_) -> list:
        """Every bundle registered under this name, oldest first, and which one serves."""
        rows, serving = list_versions(engine, name)
        return [_version_out(v, serving) for v in rows]

    @r.post("/api/models/{name}/serve", response_model=S.ModelOut, tags=["models"],
            responses=_problem_responses(400, 401, 403, 404, 409, 422, 429))
    def serve(name: str, body: S.ServeRequest, request: Request, who: Admin) -> dict:
        """Serve another version of this model from now on: a promotion by hand, or a rollback."""
        m = serve_version(engine, name, body.version, user=who.user)
        request.state.model, request.state.model_sha256 = m.name, m.sha256
        cache.rows.forget(name)
        return _model_out(m)

    predict_responses = _problem_responses(400, 401, 404, 409, 413, 415, 422, 429)
    predict_responses[200] = {"content": {FHIR_JSON: {"schema": {
        "type": "object", "description": "a FHIR R4B Bundle (type collection) of RiskAssessments: the answer "
                                         "to a FHIR request (unless it asks for Accept: application/json)"}}}}

    @r.post("/api/models/{name}/predict", response_model=S.PredictResponse, tags=["predictions"],
            responses=predict_responses,
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": S.PredictRequest.model_json_schema()},
                FHIR_JSON: {"schema": {"type": "object", "description": "a FHIR R4B Bundle of Patients and "
                                                                       "Observations (when pmed.serve.fhir "
                                                                       "is installed)"}}}}})
    async def predict(name: str, request: Request, who: Any_) -> Any:
        """Score patients: every column of ``pmed predict``, the top-5 what-if factors, treatment options.

        The input rows are stored (table ``predictions``) so that the patient reports can be
        rendered later (GET /api/predictions/{id}/report). A FHIR Bundle
        (``Content-Type: application/fhir+json``) is answered with a FHIR Bundle of
        RiskAssessments (binary and survival models), or with the JSON answer when the request
        says ``Accept: application/json``.
        """
        from anyio.to_thread import run_sync

        body = await request.body()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            model, bundle = await run_sync(cache.get, engine, name, limiter=cpu)
        except NotFoundError as e:
            e.where = e.where or "name"  # the path parameter at fault
            raise
        request.state.model, request.state.model_sha256 = model.name, model.sha256
        as_fhir = ctype == FHIR_JSON and _wants_fhir(request.headers.get("accept", ""))
        if as_fhir and bundle.task not in ("binary", "survival"):
            # refused before the body is read or anything stored
            raise InputError(f"a FHIR RiskAssessment needs a probability, and model {model.name!r} is "
                             f"{bundle.task}: it predicts a value, not a risk", where="Accept",
                             fix="send 'Accept: application/json' to get its predictions as JSON")
        rows, df, recs = _patients(body, ctype, bundle)
        out, pred = await run_sync(_score, bundle, df, recs, limiter=cpu)
        pid = uuid.uuid4().hex
        if as_fhir:  # built before anything is stored: a failure here leaves no orphan prediction
            doc = await run_sync(_risk_bundle, bundle, model, pred, pid, limiter=cpu)
        # stored by the audit middleware in the audit row's transaction, before the response
        # starts: a crash can lose neither one without the other
        request.state.pending = [Prediction(id=pid, created_at=utcnow(), user=who.user, model=model.name,
                                            model_sha256=model.sha256, rows=rows)]
        if as_fhir:
            return JSONResponse(doc, media_type=FHIR_JSON)
        return {"model": model.name, "model_sha256": model.sha256, "model_version": model.version,
                "prediction_id": pid, "predictions": out}

    @r.get("/api/predictions/{prediction_id}/report", response_class=HTMLResponse, tags=["predictions"],
           responses=_problem_responses(401, 404, 409, 429))
    def report(prediction_id: str, request: Request, who: Any_,
               index: Annotated[int, Query(ge=0, description="which patient of the prediction (0-based row)")] = 0
               ) -> HTMLResponse:
        """The HTML patient report of a stored prediction, re-rendered with the same model version."""
        from pmed.errors import BundleError

        with Session(engine) as s:
            p = s.get(Prediction, prediction_id)
        if p is None:
            raise NotFoundError("no stored prediction with this id")
        model, bundle = cache.get(engine, p.model)
        request.state.model, request.state.model_sha256 = model.name, model.sha256
        if model.sha256 != p.model_sha256:  # another version serves now: the one that made it renders it
            bundle = cache.version(engine, p.model, p.model_sha256)
            if bundle is None:
                raise BundleError(f"the version of model {model.name!r} that made this prediction is no longer on "
                                  "disk as registered; its report cannot be rendered with it", fix="predict again")
        if index >= len(p.rows):
            raise NotFoundError(f"this prediction has {len(p.rows)} patient(s); index {index} is not one",
                                where="index")
        return HTMLResponse(_render_report(bundle, pd.DataFrame(p.rows), index))

    @r.post("/api/pgx/call", response_model=S.PgxResponse, tags=["pharmacogenomics"],
            responses=_problem_responses(400, 401, 413, 422, 429))
    def pgx_call(who: Any_, file: Annotated[UploadFile, File(description="GRCh38 VCF, plain or gzipped")],
                 missing_to_ref: Annotated[bool, Form(description="positions absent from the VCF are "
                                                                  "reference")] = False) -> dict:
        """Star-allele calls, phenotypes and CPIC/DPWG recommendations of an uploaded VCF (as 'pmed pgx call')."""
        return _pgx(file.file.read(), missing_to_ref=missing_to_ref)

    @r.get("/api/audit", response_model=list[S.AuditOut], tags=["service"],
           responses=_problem_responses(401, 403, 429))
    def audit(who: Admin, limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
              offset: Annotated[int, Query(ge=0)] = 0) -> list:
        """The audit trail, newest first (hashes only; no patient value)."""
        with Session(engine) as s:
            rows = s.scalars(select(Audit).order_by(Audit.id.desc()).limit(limit).offset(offset)).all()
            return [S.AuditOut.model_validate(a, from_attributes=True).model_dump() | {"time": as_utc(a.time)}
                    for a in rows]

    # the web page at /: a client of these routes, with the same token
    from pmed.serve.page import page_router

    r.include_router(page_router(principal, engine, cache))
    return r


def _model_out(m) -> dict:
    out = {k: getattr(m, k) for k in ("name", "task", "target", "sha256", "path", "metrics", "registered_by",
                                      "version")}
    return out | {"registered_at": as_utc(m.registered_at), "serving": True}


def _version_out(v, serving: int | None) -> dict:
    out = {k: getattr(v, k) for k in ("version", "path", "sha256", "parent_sha256", "decision", "metrics",
                                      "registered_by")}
    return out | {"registered_at": as_utc(v.registered_at), "serving": v.version == serving}


def _version_as_model(v, serving: int | None) -> dict:
    return _version_out(v, serving) | {"name": v.name, "task": v.task, "target": v.target}


def _patients(body: bytes, ctype: str, bundle) -> tuple[list[dict], pd.DataFrame, pd.DataFrame | None]:
    """The request's patients: JSON ``{"patients": [...]}``, or a FHIR Bundle via :mod:`pmed.serve.fhir`;
    and the PGx recommendations sent with them (JSON ``pgx_recommendations``), else ``None``."""
    import importlib.util

    from pydantic import ValidationError as PydanticError

    if ctype == FHIR_JSON:
        if importlib.util.find_spec("pmed.serve.fhir") is None:
            raise HTTPException(415, "FHIR input is not available in this installation")
        from pmed.serve.fhir import patients_from_fhir

        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InputError("the body is not valid JSON", where="body") from None
        df = patients_from_fhir(doc, bundle.input_schema())
        rows = _jsonable(df.reset_index().to_dict("records") if df.index.name else df.to_dict("records"))
        return rows, df, None
    if ctype not in ("application/json", ""):
        raise HTTPException(415, f"send application/json (or {FHIR_JSON})")
    try:
        req = S.PredictRequest.model_validate_json(body)
    except PydanticError as e:
        # pydantic's errors without the 'input' (a patient value) nor the URL of its docs
        raise RequestValidationError(e.errors(include_input=False, include_url=False)) from None
    recs = None
    if req.pgx_recommendations is not None:
        recs = pd.DataFrame(req.pgx_recommendations)
        missing = [c for c in ("sample", "drug", "source", "recommendation") if c not in recs.columns]
        if missing:
            raise InputError(f"pgx_recommendations lack the field(s) {', '.join(missing)}",
                             where="pgx_recommendations",
                             fix="send the recommendations as POST /api/pgx/call returns them")
        recs = recs.astype({c: str for c in ("sample", "drug", "source", "recommendation")})
    # stored as strict JSON (a NaN would make PostgreSQL refuse the row)
    return _jsonable(req.patients), pd.DataFrame(req.patients), recs


def _wants_fhir(accept: str) -> bool:
    """FHIR out unless the Accept header names application/json and not FHIR (nor ranks JSON higher)."""
    ranked = {}
    for part in accept.split(","):
        media, *params = (x.strip() for x in part.split(";"))
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            ranked[media.lower()] = float(q)
        except ValueError:
            ranked[media.lower()] = 0.0
    return "application/json" not in ranked or ranked["application/json"] <= ranked.get(FHIR_JSON, 0.0)


def _risk_bundle(bundle, model, pred: pd.DataFrame, prediction_id: str) -> dict:
    """The FHIR Bundle of RiskAssessments (:func:`pmed.serve.fhir.risk_assessments`) of a prediction.

    ``basis`` holds the SHA-256 of the model's pipeline (from its manifest) and, as a second
    Reference, the registered SHA-256 of its ``SHA256SUMS`` (the JSON answer's ``model_sha256``);
    the Bundle's ``identifier`` is the prediction's id (its reports: GET /api/predictions/{id}/report).
    """
    from pmed.serve.fhir import risk_assessments

    m = bundle.manifest
    sv = m.get("survival") or {}
    doc = risk_assessments(pred, task=bundle.task, model_name=model.name, model_sha256=m["pipeline_sha256"],
                           target=str(m.get("target")), pmed_version=_version(),
                           horizons=sv.get("horizons"), time_unit=sv.get("time_unit"),
                           conformal_level=(m.get("conformal") or {}).get("confidence_level"))
    registered = {"identifier": {"system": "urn:pmed:model-sha256", "value": model.sha256},
                  "display": f"SHA-256 of the SHA256SUMS file of registered pmed model {model.name} "
                             f"(model_sha256 of the JSON answer): {model.sha256}"}
    for e in doc.get("entry", []):
        e["resource"]["basis"].append(registered)
    doc["identifier"] = {"system": "urn:pmed:prediction-id", "value": prediction_id}
    return doc


def _score(bundle, df: pd.DataFrame,
           recommendations: pd.DataFrame | None = None) -> tuple[list[dict], pd.DataFrame]:
    """Exactly ``pmed predict`` (new_patient_features + bundle.predict), with factors and options.

    Returns the JSON rows of the answer and the prediction table (indexed by patient ID).
    """
    from pmed.study.predict import new_patient_features, predict_and_explain, treatment_options

    X = new_patient_features(bundle, df)
    pred, factors = predict_and_explain(bundle, X, top=5)
    opts = (treatment_options(bundle, X, recommendations=recommendations)
            if bundle.treatment_model is not None else None)
    out = []
    for i, pid in enumerate(pred.index):
        row = {"patient_id": str(pid), **pred.loc[pid].to_dict()}
        row["factors"] = factors[i].to_dict("records")
        if opts is not None:
            row["treatment_options"] = opts[opts["patient_id"] == pid].drop(columns="patient_id").to_dict("records")
        out.append(_jsonable(row))
    return out, pred


def _render_report(bundle, df: pd.DataFrame, index: int) -> str:
    """One patient's report (pmed.study.predict.write_patient_reports) rendered in a temporary folder."""
    from pmed.study.predict import (
        new_patient_features,
        treatment_options,
        treatment_options_section,
        write_patient_reports,
    )

    X = new_patient_features(bundle, df).iloc[[index]]
    pred = bundle.predict(X)
    sections = None
    if bundle.treatment_model is not None:
        opts = treatment_options(bundle, X)
        sections = {p: [treatment_options_section(opts, p, bundle.manifest)] for p in pred.index}
    with tempfile.TemporaryDirectory(prefix="pmed-serve-") as tmp, _REPORT_LOCK:
        paths = write_patient_reports(bundle, X, pred, Path(tmp) / "report", sections=sections)
        return paths[0].read_text(encoding="utf-8")


def _pgx(data: bytes, *, missing_to_ref: bool) -> dict:
    """``run_pgx`` on an uploaded VCF (written to a private temporary file)."""
    from pmed.genomics.pgx import run_pgx

    gz = data[:2] == b"\x1f\x8b"
    if not gz and not data.lstrip(b"\xef\xbb\xbf").startswith(b"##fileformat=VCF"):
        raise InputError("the upload is not a VCF (no '##fileformat=VCF' header, nor gzip)", where="file",
                         fix="upload a GRCh38 VCF, plain or bgzipped")
    with tempfile.TemporaryDirectory(prefix="pmed-serve-") as tmp:
        path = Path(tmp) / ("upload.vcf.gz" if gz else "upload.vcf")
        path.write_bytes(data)
        with warnings.catch_warnings(record=True) as caught:
            # warnings go to the client, not to the server's stderr (they may name samples)
            warnings.simplefilter("always")
            res = run_pgx(path, missing_to_ref=missing_to_ref)
        out = res.to_dict()
    out.pop("source", None)  # the temporary path
    out["warnings"] = list(dict.fromkeys(str(w.message) for w in caught))
    return _jsonable(out)
