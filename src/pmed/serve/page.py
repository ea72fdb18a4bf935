"""The clinician web page of ``pmed serve`` (``GET /``) and the two API routes it reads.

The page is a client of the API and nothing more: ``/`` and its static files hold no data and
need no token; everything shown comes from ``/api/…`` with the bearer token the user signs in
with (kept in the browser's ``sessionStorage``). The form is built from
``GET /api/models/{name}/schema``; the position in the training population comes from
``GET /api/models/{name}/population`` (:meth:`pmed.study.bundle.ModelBundle.percentile`).
"""

import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from pmed.errors import NotFoundError
from pmed.serve.problems import PROBLEM_JSON
from pmed.serve.schemas import Problem

__all__ = ["page_router", "model_schema", "CONTENT_SECURITY_POLICY"]

_HERE = Path(__file__).parent
#: The static files served under ``/static/`` (a fixed list: no path from the URL reaches the disk).
_STATIC = {"page.js": "text/javascript; charset=utf-8", "page.css": "text/css; charset=utf-8"}
#: The page runs only its own script; the report opened from it (a blob: document, which inherits
#: this policy) keeps its inline styles and data: images.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; connect-src 'self'; frame-src blob:; "
                           "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class ColumnOut(BaseModel):
    """One input column of a model (its training schema's spec)."""

    name: str
    type: str = Field(description="float, int, bool, category or string")
    unit: str | None
    min: float | None
    max: float | None
    categories: list[str] | None
    required: bool = Field(description="the column must be sent")
    nullable: bool = Field(description="null (missing) is allowed")
    description: str | None
    feature: bool = Field(description="the model reads this column")
    block: bool = Field(default=False, description="the column comes from a modality block (genotypes, images, "
                                                   "...), not the patient table; send it beside the patient's "
                                                   "columns, null when unknown")


class ModelSchemaOut(BaseModel):
    """What a form for one new patient of a model needs."""

    name: str
    model_sha256: str
    task: str = Field(description="binary, continuous or survival")
    target: str | None
    id: str = Field(description="the patient ID column")
    threshold: float | None
    confidence_level: float | None = Field(description="level of the conformal prediction sets / intervals")
    blocks: list[str] = Field(description="modality blocks the model also reads; the page and the API accept "
                                          "their columns inline (the columns with block true, beside the "
                                          "patient's)")
    columns: list[ColumnOut]
    treatment: dict[str, Any] | None = Field(description="arms, control, outcome, outcome_type, outcome_scale, "
                                                         "level, higher_is_better of the treatment options")


class PopulationOut(BaseModel):
    value: float | None
    percentile: float | None = Field(description="percent of the training population (out-of-fold) predicted "
                                                  "lower; null without population predictions")


def _problems(*codes: int) -> dict:
    return {c: {"model": Problem, "content": {PROBLEM_JSON: {}}} for c in codes}


@lru_cache(maxsize=1)
def _template():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("page.html.j2")


def page_router(principal: Callable[..., Any], engine: Engine, cache) -> APIRouter:
    """Routes of the web page: ``/``, ``/static/{name}``, and the API routes the page reads.

    Parameters
    ----------
    principal
        The service's token dependency (``app.py``'s): the API routes here are authenticated,
        rate limited and audited exactly as the others.
    engine
        The service's database.
    cache
        The service's :class:`pmed.serve.registry.BundleCache`.

    Returns
    -------
    fastapi.APIRouter
        To include in the service's router.
    """
    from pmed import __version__

    r = APIRouter()
    Who = Annotated[Any, Depends(principal)]

    @r.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        """The page (static HTML: no data, no token needed)."""
        return HTMLResponse(_template().render(version=__version__), headers=_HEADERS)

    @r.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        """The page's script and style sheet."""
        if name not in _STATIC:
            raise NotFoundError("no such static file")
        return Response((_HERE / "static" / name).read_bytes(), media_type=_STATIC[name],
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})

    @r.get("/api/models/{name}/schema", response_model=ModelSchemaOut, tags=["models"],
           responses=_problems(401, 404, 409, 429))
    def schema(name: str, request: Request, who: Who) -> dict:
        """The model's input columns (type, unit, range, categories, required) and what it predicts.

        Built from the bundle's manifest (``input_schema``, ``features``): what a form for one new
        patient needs.
        """
        model, bundle = cache.get(engine, name)
        request.state.model, request.state.model_sha256 = model.name, model.sha256
        return model_schema(bundle) | {"name": model.name, "model_sha256": model.sha256}

    @r.get("/api/models/{name}/population", response_model=PopulationOut, tags=["models"],
           responses=_problems(401, 404, 409, 422, 429))
    def population(name: str, request: Request, who: Who,
                   value: Annotated[float, Query(description="a prediction of this model (probability, risk "
                                                             "or predicted value)")]) -> dict:
        """Percent of the training population (out-of-fold predictions) predicted lower than ``value``.

        ``percentile`` is ``null`` when the bundle holds no population predictions.
        """
        model, bundle = cache.get(engine, name)
        request.state.model, request.state.model_sha256 = model.name, model.sha256
        p = bundle.percentile(value) if math.isfinite(value) else float("nan")
        return {"value": value if math.isfinite(value) else None, "percentile": p if math.isfinite(p) else None}

    return r


def model_schema(bundle) -> dict:
    """What a form for one new patient of ``bundle`` needs (the body of ``GET /api/models/{name}/schema``).

    Parameters
    ----------
    bundle
        A loaded :class:`pmed.study.bundle.ModelBundle`.

    Returns
    -------
    dict
        ``task, target, id, threshold, confidence_level, blocks``, ``treatment`` (``None``, or the
        arms, control, outcome and its type, interval level of the treatment options) and ``columns``: one
        ``{name, type, unit, min, max, categories, required, nullable, description, feature, block}`` per
        column of the training schema (``feature``: the model reads it), then one per model feature
        the schema lacks (``block``: it comes from a modality block; sent inline beside the patient's
        columns, it may be null: the model imputes it).
    """
    m = bundle.manifest
    features = set(bundle.feature_names)
    sch = bundle.input_schema()
    cols = []
    for name, spec in sch.columns.items():
        cols.append({"name": name, "type": spec.type, "unit": spec.unit, "min": _num(spec.min),
                     "max": _num(spec.max), "categories": None if spec.categories is None else
                     [str(c) for c in spec.categories], "required": bool(spec.required),
                     "nullable": bool(spec.nullable), "description": spec.description, "feature": name in features,
                     "block": False})
    # the blocks' columns (pmed.study.predict.new_patient_features takes them inline when every one
    # of them is there, null or not): described by the training data's feature specs
    specs = m.get("feature_specs") or {}
    for name in bundle.feature_names:
        if name in sch.columns:
            continue
        spec = specs.get(name) or {}
        cats = spec.get("categories")
        cols.append({"name": name, "type": str(spec.get("type") or "float"), "unit": spec.get("unit"),
                     "min": _num(spec.get("min")), "max": _num(spec.get("max")),
                     "categories": None if cats is None else [str(c) for c in cats], "required": False,
                     "nullable": True, "description": spec.get("description"), "feature": True, "block": True})
    treatment = m.get("treatment") or None
    return {"task": bundle.task, "target": m.get("target"), "id": sch.id, "threshold": _num(m.get("threshold")),
            "confidence_level": _num((m.get("conformal") or {}).get("confidence_level")),
            "blocks": sorted(m.get("blocks") or {}), "columns": cols,
            "treatment": None if treatment is None else {
                "control": treatment.get("control"), "arms": treatment.get("arms"),
                "outcome": treatment.get("outcome"), "outcome_type": treatment.get("outcome_type"),
                "outcome_scale": treatment.get("outcome_scale"), "level": _num(treatment.get("level")),
                "higher_is_better": treatment.get("higher_is_better")}}


def _num(v) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None
