"""Errors as ``application/problem+json`` (RFC 9457): ``type, title, status, detail`` (+ ``field``).

Every pmed error class has its status code; validation errors of the request body name the
field; anything unexpected is a bare 500 without a stack trace (the trace goes to the server log
only, whose lines name no patient value).
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pmed import errors as E

__all__ = ["STATUS", "status_of", "problem", "install_handlers", "PROBLEM_JSON"]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("pmed.serve")

#: pmed error class → HTTP status (the most specific class listed wins; order matters).
STATUS: list[tuple[type[E.PmedError], int]] = [
    (E.MissingDependencyError, 503),  # the server lacks an optional package: not the client's fault
    (E.DataNotFoundError, 503),       # the server lacks reference data: likewise
    (E.NotFoundError, 404),
    (E.ValidationError, 422),         # IDMismatchError included: the data break their schema
    (E.SchemaError, 422),
    (E.BundleError, 409),             # the bundle is not (or no longer) what was registered
    (E.StudyError, 422),
    (E.InputError, 400),
    (E.OptionError, 400),
    (E.PmedError, 400),
]
_COLUMN = re.compile(r"column '([^']+)'")
# a FHIR Bundle's problem: "entry[2].resource.birthDate: …" (pmed.serve.fhir's FHIRPath-like location)
_FHIR_PATH = re.compile(r"^((?:entry\[\d+\]|Bundle)[\w.\[\]]*)")
# a ``where`` that is a request field or header ("path", "index", "Accept"), not a place in a file
_FIELD = re.compile(r"^[A-Za-z_][\w.\[\]-]{0,60}$")


def status_of(exc: E.PmedError) -> int:
    """The HTTP status of a pmed error (see :data:`STATUS`)."""
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def _slug(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem(status: int, title: str, detail: str, *, type_: str = "about:blank", **extra) -> JSONResponse:
    """A problem response (``application/problem+json``)."""
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _pmed_error(request: Request, exc: E.PmedError) -> JSONResponse:
    status = status_of(exc)
    detail = str(exc.message if not exc.where else f"{exc.where}: {exc.message}")
    extra = {"fix": exc.fix}
    if isinstance(exc, E.ValidationError):
        extra["problems"] = exc.problems
        m = _COLUMN.search(exc.problems[0]) if exc.problems else None
        if m is None:  # "missing feature column(s) the model needs: a, b"
            m = re.search(r"column\(s\)[^:]*: ([^,\s]+)", exc.problems[0]) if exc.problems else None
        if m is None:  # a malformed FHIR Bundle: the element's path
            m = _FHIR_PATH.match(exc.problems[0]) if exc.problems else None
        extra["field"] = m.group(1) if m else None
    elif exc.where and not exc.file and _FIELD.match(exc.where):
        extra["field"] = exc.where
    request.state.outcome = _slug(type(exc).__name__)
    return problem(status, type(exc).__name__, detail, type_=f"urn:pmed:problem:{_slug(type(exc).__name__)}",
                   **extra)


def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errs = exc.errors()
    first = errs[0] if errs else {}
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    field = ".".join(loc) or None
    # pydantic's messages name the field and the rule, never the value ('input' is left out)
    detail = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body') or 'body'}: {e.get('msg')}"
                       for e in errs[:10])
    request.state.outcome = "invalid-request"
    return problem(422, "Invalid request", detail, type_="urn:pmed:problem:invalid-request", field=field)


def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    from http import HTTPStatus

    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "Error"
    request.state.outcome = getattr(request.state, "outcome", None) or _slug(title.replace(" ", ""))
    # a 401 is always about the bearer token: its header is the field at fault
    resp = problem(exc.status_code, title, str(exc.detail), type_=f"urn:pmed:problem:{exc.status_code}",
                   field="Authorization" if exc.status_code == 401 else None)
    for k, v in (exc.headers or {}).items():
        resp.headers[k] = v
    return resp


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem(500, "Internal Server Error", "the server failed; the error is in its log",
                   type_="urn:pmed:problem:500")


def install_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(E.PmedError, _pmed_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
