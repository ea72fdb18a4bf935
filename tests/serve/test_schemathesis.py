"""``pmed serve``'s OpenAPI document fuzzed by schemathesis: every operation, requests generated
from the document (valid and invalid), each answer checked for no 5xx, a body that conforms to
the documented schema and a documented content type.

Run alone: ``.venv/bin/pytest tests/serve/test_schemathesis.py -q`` (about half a minute); more
examples: ``PMED_FUZZ_EXAMPLES=200``.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serve_helpers import bearer, train_bundle  # noqa: E402

from pmed.serve import create_app, create_token  # noqa: E402

MODEL = "test-event"  # the study of serve_helpers.train_bundle
EXAMPLES = int(os.environ.get("PMED_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    paths = train_bundle(root)
    # the rate limit would answer most generated requests with 429 and hide the routes behind it
    app = create_app(paths["models"], f"sqlite:///{root / 'serve.sqlite'}", rate_limit_per_minute=1_000_000)
    token = create_token(app.state.engine, role="admin", user="fuzz")  # admin: every route is reached
    return {"app": app, "auth": bearer(token)}


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_asgi("/api/openapi.json", served["app"], headers=served["auth"])


# schemathesis.pytest.from_fixture fails with this pytest ('Function' object has no attribute
# '_nodeid'), so each operation is a parametrized test running its own Hypothesis search; the
# operations not listed (routes added later) are fuzzed together by the last test
OPERATIONS = [
    "GET /health",
    "GET /api/models",
    "POST /api/models",
    "POST /api/models/{name}/predict",
    "GET /api/predictions/{prediction_id}/report",
    "POST /api/pgx/call",
    "GET /api/audit",
]


def _operations(api_schema) -> dict:
    return {op.label: op for op in (r.ok() for r in api_schema.get_all_operations())}


def _fuzz(op, auth: dict) -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    # valid requests and invalid ones (wrong types, missing fields): neither may be a 5xx; with the
    # served model's name too, else nearly every request would stop at 404 before its body is read
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [op.as_strategy(m) for m in modes]
    if "{name}" in op.path:
        strategies += [op.as_strategy(m, path_parameters={"name": MODEL}) for m in modes]
    cases = st.one_of(strategies)

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def run(case):
        case.call_and_validate(headers=auth, checks=CHECKS)

    run()


def test_the_document_declares_problem_json_errors(api_schema):
    ops = _operations(api_schema)
    assert set(OPERATIONS) <= set(ops)
    for label, op in ops.items():
        for code, res in op.definition.raw["responses"].items():
            if code.startswith("4"):
                assert list(res["content"]) == ["application/problem+json"], (label, code)
        if label != "GET /health":
            assert {"401", "429"} <= set(op.definition.raw["responses"]), label


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_openapi_document(api_schema, served, label):
    _fuzz(_operations(api_schema)[label], served["auth"])


def test_other_operations_conform_to_the_openapi_document(api_schema, served):
    others = [op for label, op in _operations(api_schema).items() if label not in OPERATIONS]
    for op in others:
        _fuzz(op, served["auth"])
