"""Request and response bodies of the service (pydantic; they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Problem", "Health", "ModelOut", "RegisterRequest", "PredictRequest", "Factor",
           "PatientPrediction", "PredictResponse", "PgxResponse", "AuditOut"]

#: Most patients in one prediction request (the body limit usually binds first).
MAX_PATIENTS = 10_000


class Problem(BaseModel):
    """An error (RFC 9457 ``application/problem+json``)."""

    type: str = Field(description="a URN naming the kind of problem, e.g. urn:pmed:problem:validation-error")
    title: str
    status: int
    detail: str
    field: str | None = Field(None, description="the request field or data column at fault, when one is")
    fix: str | None = Field(None, description="what to do about it")
    problems: list[str] | None = Field(None, description="every problem found in the data (validation errors)")


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class ModelOut(BaseModel):
    """A registered model bundle."""

    name: str
    task: str = Field(description="binary, continuous or survival")
    target: str | None
    sha256: str = Field(description="SHA-256 of the bundle's SHA256SUMS file (which hashes every file)")
    path: str
    metrics: dict[str, Any] | None = Field(description="the validation metrics of the bundle's manifest")
    registered_at: datetime
    registered_by: str | None


class RegisterRequest(BaseModel):
    """A bundle folder on the server to verify and register."""

    path: str = Field(description="the bundle folder (DIR/model written by 'pmed run')")
    name: str | None = Field(None, description="name to serve it under (default: the study's name)")


class PredictRequest(BaseModel):
    """New patients: one object per patient, with the ID and every column of the training table."""

    patients: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_PATIENTS,
                                           examples=[[{"patient_id": "N0", "age": 61.5, "sex": "F"}]])
    pgx_recommendations: list[dict[str, Any]] | None = Field(
        None, max_length=10_000,
        description="CPIC/DPWG recommendations for these patients as POST /api/pgx/call returns them "
                    "('sample' = the patient ID; 'drug', 'source', 'recommendation' at least): the treatment "
                    "options' pgx_flag and pgx_guidance come from them, as pmed predict --pgx")


class Factor(BaseModel):
    """A what-if factor: the prediction had this feature been typical (pmed.study.explain_patient)."""

    feature: str
    value: Any
    typical_value: Any
    contribution: float = Field(description="prediction minus the prediction with the typical value")


class PatientPrediction(BaseModel):
    """One patient's prediction: every column of ``pmed predict`` plus factors (and treatment options).

    Binary: ``probability, predicted_class, prediction_set``; continuous: ``prediction,
    interval_low, interval_high``; survival: ``risk, surv_<t>[, _low, _high], median_survival``.
    """

    model_config = ConfigDict(extra="allow")
    patient_id: str
    factors: list[Factor]
    treatment_options: list[dict[str, Any]] | None = Field(
        None, description="ranked treatment options (bundles of a study with a treatment section)")


class PredictResponse(BaseModel):
    model: str
    model_sha256: str
    prediction_id: str = Field(description="GET /api/predictions/{id}/report renders a patient's report")
    predictions: list[PatientPrediction]


class PgxResponse(BaseModel):
    """Star-allele calls and CPIC/DPWG recommendations (the tables of 'pmed pgx call')."""

    data_version: str
    build_check: dict[str, Any] | None
    ref_issues: dict[str, Any] | None
    calls: list[dict[str, Any]]
    recommendations: list[dict[str, Any]]
    warnings: list[str]


class AuditOut(BaseModel):
    """One audited request (hashes only: no patient value)."""

    id: int
    time: datetime
    user: str | None
    route: str
    method: str
    model: str | None
    model_sha256: str | None
    input_sha256: str | None
    status_code: int
    outcome: str
