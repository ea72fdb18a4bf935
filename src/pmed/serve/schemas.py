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
    version: int | None = Field(None, description="the bundle's version under this name (1, 2, …)")
    serving: bool = Field(True, description="whether this version answers the name's predictions")
    decision: str | None = Field(None, description="its promotion.json's decision (pmed update): promoted or "
                                                   "candidate")


class VersionOut(BaseModel):
    """One version of a model: a bundle registered under its name."""

    version: int
    serving: bool
    path: str
    sha256: str
    parent_sha256: str | None = Field(description="SHA-256 of the bundle it was updated from (pmed update)")
    decision: str | None = Field(description="its promotion.json's decision: promoted or candidate")
    metrics: dict[str, Any] | None
    registered_at: datetime
    registered_by: str | None


class RegisterRequest(BaseModel):
    """A bundle folder on the server to verify and register."""

    path: str = Field(description="the bundle folder (DIR/model written by 'pmed run' or 'pmed update')")
    name: str | None = Field(None, description="name to serve it under (default: the study's name)")
    serve: bool | None = Field(None, description="serve it at once (default: a new name, a bundle retrained "
                                                 "in place, or an update whose promotion.json says promoted)")


class ServeRequest(BaseModel):
    """Which version of a model answers from now on (a rollback names an earlier one)."""

    version: int = Field(ge=1)


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
    model_version: int | None = Field(None, description="the version of the model that answered")
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
