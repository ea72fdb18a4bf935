"""The study file: what data, which target, which features, which models, how to evaluate.

A study is YAML validated with pydantic; errors name the file, the offending key and its line::

    name: clopidogrel-response
    data:
      patients: data/patients.csv      # relative to the study file
      schema: data/schema.yaml
      blocks:
        genotypes: data/genotypes.vcf.gz
    target: {column: response, task: binary}
    features:
      blocks: [patients, genotypes]
      exclude: [cad, ldl_mmol_l]
    models:
      - family: linear
      - family: lightgbm
        params: {n_estimators: 300}
    evaluation: {folds: 5, repeats: 1, select_by: auroc}
    imbalance: {weighting: balanced, recalibrate: sigmoid}   # optional; default: neither
    seed: 0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from pmed.errors import StudyError
from pmed.evaluate.metrics import BINARY_METRICS, REGRESSION_METRICS
from pmed.models.zoo import DEFAULT_FAMILIES, FAMILIES

__all__ = ["Study", "DataSpec", "TargetSpec", "FeatureSpec", "ModelSpec", "EvaluationSpec", "ImbalanceSpec",
           "TreatmentSpec", "load_study"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    """Where the patients and modality blocks are. Paths are relative to the study file.

    Either ``patients`` (a table file) or ``dataset`` (a named data set of
    :mod:`pmed.datasets` with its arguments, e.g. ``{name: gdsc, drug: Nutlin-3a}``).
    """

    patients: str | None = None
    dataset: dict[str, Any] | None = None
    schema_: str | None = Field(default=None, alias="schema")
    id: str = "patient_id"
    outcomes: list[str] = Field(
        default_factory=list, description="other outcome columns in the table: never used as features")
    blocks: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.patients is None) == (self.dataset is None):
            raise ValueError("give exactly one of data.patients (a file) or data.dataset (a named data set)")
        if self.dataset is not None and "name" not in self.dataset:
            raise ValueError("data.dataset needs a 'name' (see pmed.datasets.DATASETS)")
        return self


class TargetSpec(_Strict):
    """The outcome to predict.

    Binary and continuous targets name one ``column``. A time-to-event target
    (``task: survival``) names instead the follow-up ``time`` and ``event`` (1 = event,
    0 = censored) columns and the ``horizons`` (in the unit of ``time``) at which survival
    probabilities are predicted and evaluated::

        target: {task: survival, time: os_days, event: died, horizons: [365, 730], time_unit: days}
    """

    column: str | None = None
    task: Literal["binary", "continuous", "survival"]
    positive: Any = Field(default=None, description="value meaning 'event' for a binary target (default 1/True)")
    time: str | None = Field(default=None, description="survival: follow-up time column (> 0)")
    event: str | None = Field(default=None, description="survival: event column, 1 = event, 0 = censored")
    horizons: list[float] | None = Field(
        default=None, description="survival: times (unit of `time`) for surv_<t>, td-AUC, Brier, calibration")
    time_unit: str = Field(default="days", description="survival: unit of the time column, for reports")

    @field_validator("horizons")
    @classmethod
    def _positive_horizons(cls, v: list[float] | None) -> list[float] | None:
        import math

        if not v:
            return v
        bad = [h for h in v if not (math.isfinite(h) and h > 0)]
        if bad:
            raise ValueError(f"target.horizons must be positive numbers, got {bad[0]:g}")
        if len(set(v)) != len(v):
            raise ValueError("target.horizons has a repeated value")
        return sorted(float(h) for h in v)

    @model_validator(mode="after")
    def _by_task(self) -> TargetSpec:
        if self.task == "survival":
            for key in ("time", "event"):
                if getattr(self, key) is None:
                    raise ValueError(f"a survival target needs target.{key} (the "
                                     f"{'follow-up time' if key == 'time' else 'event (1 = event, 0 = censored)'}"
                                     " column)")
            if self.time == self.event:
                raise ValueError(f"target.time and target.event name the same column {self.time!r}")
            if self.column is not None or self.positive is not None:
                raise ValueError("a survival target has time: and event: columns, not column: or positive:")
            if not self.horizons:
                raise ValueError("a survival target needs target.horizons: one or more times at which to predict "
                                 "survival, e.g. [365, 730]")
        else:
            if self.column is None:
                raise ValueError(f"a {self.task} target needs target.column")
            extra = [k for k in ("time", "event", "horizons") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"target.{extra[0]} applies to survival targets only (task: survival)")
        return self

    @property
    def outcome_columns(self) -> list[str]:
        """The table columns this target reads (never used as features)."""
        return [self.time, self.event] if self.task == "survival" else [self.column]

    @property
    def label(self) -> str:
        """How reports name the target: the column, or ``Surv(time, event)``."""
        return f"Surv({self.time}, {self.event})" if self.task == "survival" else str(self.column)


class FeatureSpec(_Strict):
    """Which feature tables and columns feed the models."""

    blocks: list[str] | None = None
    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)


def _known_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; use one of: {', '.join(FAMILIES)}")
    return family


class ModelSpec(_Strict):
    """One candidate: a registered family (:data:`pmed.models.FAMILIES`) and estimator parameters."""

    family: str
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    features: list[str] | None = Field(
        default=None, description="use only these features (e.g. a tissue-only baseline)")
    blocks: list[str] | None = Field(
        default=None, description="use only the columns of these tables, plus any `features` "
                                  "(e.g. [patients] for a clinical-only baseline)")
    grid: dict[str, list[Any]] | None = Field(
        default=None, description="hyperparameters tuned by an inner CV inside each outer fold (nested CV)")
    calibration: Literal["sigmoid", "isotonic"] | None = Field(
        default=None, description="recalibrate probabilities (Platt or isotonic), fitted inside each fold")

    @field_validator("family")
    @classmethod
    def _family(cls, v: str) -> str:
        return _known_family(v)

    @property
    def label(self) -> str:
        return self.name or self.family


class EvaluationSpec(_Strict):
    """Cross-validation scheme and the metric that picks the best model."""

    folds: int = Field(default=5, ge=2, le=50)
    repeats: int = Field(default=1, ge=1, le=100)
    group: str | None = Field(default=None, description="column grouping rows of the same patient")
    select_by: str | None = None
    threshold: float = Field(default=0.5, gt=0, lt=1)
    bootstrap: int = Field(default=500, ge=0, le=100_000)
    groups: list[str] = Field(
        default_factory=list,
        description="sensitive attributes (sex, ancestry, age band, site): metrics per subgroup")
    min_group_size: int = Field(default=30, ge=1)
    inner_folds: int = Field(default=3, ge=2, le=20, description="inner CV folds for models with a grid")
    coefficient_bootstrap: int = Field(default=100, ge=0, le=10_000,
                                       description="refits for linear-model coefficient CIs (0: skip)")
    interval_bootstrap: int | None = Field(
        default=None, ge=0, le=1000,
        description="bootstrap refits of the selected coxnet/gbsa model for per-patient survival intervals "
                    "(0: none; default 50 for coxnet, 0 for gbsa, whose every refit is a whole boosting fit)")
    confidence_level: float = Field(default=0.9, gt=0, lt=1,
                                    description="coverage of conformal prediction sets / intervals")
    report: bool = Field(default=True, description="full clinical evaluation and HTML model report")


class ImbalanceSpec(_Strict):
    """How a binary study handles class imbalance. The default is to do nothing to it.

    Weighting the rare class up (``weighting: balanced``) trades calibration for sensitivity at
    0.5: every predicted risk moves towards 0.5. So weighting comes with a recalibration
    (``CalibratedClassifierCV`` around the whole pipeline, fitted inside each training fold, so
    no test patient leaks into it) unless ``recalibrate: none`` is written.
    """

    weighting: Literal["none", "balanced"] = Field(
        default="none", description="class_weight of every binary model that takes one")
    recalibrate: Literal["none", "sigmoid", "isotonic"] | None = Field(
        default=None, description="in-fold recalibration (default: sigmoid when weighting, else none)")
    cv: int = Field(default=3, ge=2, le=20, description="internal folds of the recalibration")

    @property
    def recalibration(self) -> str | None:
        """The recalibration method in force, or ``None``."""
        r = self.recalibrate or ("sigmoid" if self.weighting == "balanced" else "none")
        return None if r == "none" else r

    def describe(self) -> str:
        """One sentence for the model report."""
        if self.weighting == "none" and self.recalibration is None:
            return ("None: models are fitted unweighted (class_weight=None), so predicted risks keep "
                    "the cohort's prevalence; no recalibration.")
        w = ("classes weighted to balance them (class_weight='balanced') in every binary model that "
             "takes weights" if self.weighting == "balanced" else "models fitted unweighted (class_weight=None)")
        r = (f"probabilities recalibrated ({self.recalibration}, {self.cv} internal folds) inside each "
             "training fold" if self.recalibration else "no recalibration (predicted risks are shifted "
             "towards 0.5 by the weighting)")
        return f"{w}; {r}."


class TreatmentSpec(_Strict):
    """The treatment whose effect on the target is estimated (:mod:`pmed.effects`)::

        treatment: {column: drug, control: clopidogrel, randomized: true, propensity: 0.5}

    Every other value of ``column`` is an arm compared with ``control``. A trial
    (``randomized: true``) uses its known allocation probability ``propensity`` (each arm's,
    the control's included; a number for equal allocation, or arm → probability), or the arms'
    shares when it is not given; otherwise the propensity is modelled and an overlap report
    says who is left out.
    """

    column: str
    control: Any
    randomized: bool = False
    propensity: float | dict[str, float] | None = None
    subgroups: list[str] = Field(default_factory=list, description="columns whose levels get their own ATE")
    higher_is_better: bool = Field(default=True, description="whether a larger outcome is better for the patient "
                                                              "(default false on a survival target: an event is bad)")
    overlap: tuple[float, float] = Field(default=(0.05, 0.95), description="propensity bounds (observational)")
    modifiers: list[str] | None = Field(
        default=None, description="columns that may modify the effect, the covariates of the CATE learners and of "
                                  "the bundle's treatment options (default every feature; the ATE's outcome and "
                                  "propensity models always use every feature)")
    horizon: float | None = Field(default=None, description="survival targets: the effect is the difference in "
                                                             "P(event by horizon) (default the last target horizon)")

    @model_validator(mode="after")
    def _check(self) -> TreatmentSpec:
        lo, hi = self.overlap
        if not 0 <= lo < hi <= 1:
            raise ValueError(f"treatment.overlap must be two probabilities lo < hi, got {list(self.overlap)}")
        import math

        if self.horizon is not None and not (math.isfinite(self.horizon) and self.horizon > 0):
            raise ValueError(f"treatment.horizon must be a positive time (unit of target.time), got {self.horizon:g}")
        if self.propensity is not None and not self.randomized:
            raise ValueError("treatment.propensity is a trial's known allocation probability: set randomized: true "
                             "(observational studies model it)")
        return self


class ModalitySpec(_Strict):
    """One modality of a ``fusion:`` section: columns (names or glob patterns), a table, or images."""

    columns: list[str] | None = Field(default=None, description="feature names and glob patterns, e.g. ['*_mut']")
    block: str | None = Field(default=None, description="every column of a table: patients or a data.blocks name")
    images: str | None = Field(default=None, description="one image per patient: a manifest CSV/TSV (patient_id, "
                                                         "path) or a MedMNIST-style .npz, relative to the study")
    size: int = Field(default=28, ge=8, le=128, description="images: side of the grey square each is resized to")

    @model_validator(mode="after")
    def _one(self) -> ModalitySpec:
        if sum(v is not None for v in (self.columns, self.block, self.images)) != 1:
            raise ValueError("a modality takes one of columns: […], block: NAME or images: FILE")
        if self.columns is not None and not self.columns:
            raise ValueError("a modality's columns: list is empty")
        return self


class FusionSpec(_Strict):
    """Several modalities in one model (:mod:`pmed.fusion`)::

        fusion: {method: late, family: linear,
                 modalities: {clinical: {block: patients}, genome: {block: prs}, wearables: {columns: ["wear_*"]}}}

    ``early`` concatenates the modalities' columns with one missingness indicator per modality;
    ``late`` fits one model per modality and stacks them with a meta-learner fitted on inner
    out-of-fold predictions, one per subset of modalities a patient may have; ``joint`` trains
    one PyTorch network end to end (:class:`pmed.fusion.JointFusion`: an encoder per modality,
    masks, modality dropout; ``params`` are its parameters, e.g. ``{max_epochs: 40,
    modality_dropout: 0.2}``, and ``family`` is then only the model of each modality alone).
    Every study with fusion also reports each modality alone and the fused model without each
    modality.
    """

    method: Literal["early", "late", "joint"] = "late"
    modalities: dict[str, ModalitySpec]
    family: str = Field(default="linear", description="the model family of each modality (late; each "
                                                      "modality alone) or of the concatenation (early)")
    params: dict[str, Any] = Field(default_factory=dict, description="its estimator parameters (joint: the "
                                                                     "network's)")
    inner_folds: int = Field(default=5, ge=2, le=20, description="late: folds of the inner cross-fitting")

    @field_validator("family")
    @classmethod
    def _family(cls, v: str) -> str:
        return _known_family(v)

    @model_validator(mode="after")
    def _check(self) -> FusionSpec:
        if len(self.modalities) < 2:
            raise ValueError("fusion needs at least two modalities")
        return self


#: metrics a survival study may select by (both higher = better)
SURVIVAL_METRICS = ("harrell_c", "uno_c")
#: candidates of a survival study that lists no models
SURVIVAL_DEFAULT_FAMILIES = ("cox", "coxnet", "rsf", "gbsa", "km")


def _default_models() -> list[ModelSpec]:
    return [ModelSpec(family=f) for f in DEFAULT_FAMILIES]


class Study(_Strict):
    """A whole study. Load one with :func:`load_study`."""

    name: str
    description: str = ""
    data: DataSpec
    target: TargetSpec
    features: FeatureSpec = Field(default_factory=FeatureSpec)
    models: list[ModelSpec] = Field(default_factory=_default_models, min_length=1)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    imbalance: ImbalanceSpec = Field(default_factory=ImbalanceSpec)
    treatment: TreatmentSpec | None = None
    effect_models: list[str] | None = Field(
        default=None, description="CATE learners for the treatment section (default t_learner, dr_learner, "
                                  "causal_forest)")
    fusion: FusionSpec | None = None
    # NumPy's legacy generator and scikit-learn take seeds in 0…2**32-1 only
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    # set by load_study, not by the user
    base_dir: Path = Field(default=Path("."), exclude=True)
    source_text: str = Field(default="", exclude=True)
    source_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> Study:
        task = self.target.task
        allowed = {"binary": BINARY_METRICS, "continuous": REGRESSION_METRICS,
                   "survival": SURVIVAL_METRICS}[task]
        if task == "survival":
            if "models" not in self.model_fields_set:
                self.models = [ModelSpec(family=f) for f in SURVIVAL_DEFAULT_FAMILIES]
            for i, m in enumerate(self.models):
                if m.grid or m.calibration:
                    key = "grid" if m.grid else "calibration"
                    raise ValueError(f"models[{i}].{key} is not available for survival targets")
            if self.evaluation.groups:
                raise ValueError("evaluation.groups (subgroup metrics) is not available for survival targets")
        if self.evaluation.select_by is None:
            self.evaluation.select_by = {"binary": "auroc", "continuous": "r2", "survival": "harrell_c"}[task]
        elif self.evaluation.select_by not in allowed:
            raise ValueError(
                f"evaluation.select_by {self.evaluation.select_by!r} is not a {self.target.task} "
                f"metric; use one of: {', '.join(allowed)}"
            )
        from pmed.models.registry import get_family

        for m in self.models:
            tasks = get_family(m.family).tasks
            if self.target.task not in tasks:
                raise ValueError(f"model family {m.family!r} handles {' and '.join(tasks)} targets, "
                                 f"not {self.target.task}")
        if self.target.task != "binary" and (self.imbalance.weighting != "none" or self.imbalance.recalibration):
            raise ValueError("imbalance applies to binary targets only")
        if self.effect_models is not None and self.treatment is None:
            raise ValueError("effect_models needs a treatment: section")
        if self.treatment is not None:
            from pmed.effects.learners import LEARNERS

            if self.target.task == "survival":
                # an event is bad for the patient: a lower risk of it is the better arm
                if "higher_is_better" not in self.treatment.model_fields_set:
                    self.treatment.higher_is_better = False
            elif self.treatment.horizon is not None:
                raise ValueError("treatment.horizon applies to survival targets only (the time by which the event "
                                 "is counted); drop it, the effect is on the target column itself")
            if self.treatment.column in self.target.outcome_columns:
                raise ValueError(f"treatment.column {self.treatment.column!r} is the target")
            bad = [m for m in self.effect_models or [] if m not in LEARNERS]
            if bad:
                raise ValueError(f"unknown effect model {bad[0]!r}; use among: {', '.join(LEARNERS)}")
        if self.fusion is not None and task == "survival":
            raise ValueError("fusion is available for binary and continuous targets (survival: not yet)")
        if self.fusion is not None and task not in get_family(self.fusion.family).tasks:
            raise ValueError(f"fusion.family {self.fusion.family!r} does not handle {task} targets")
        labels = [m.label for m in self.models]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"models share the name(s) {', '.join(dup)}; give each a unique 'name'")
        return self

    def model_params(self, spec: ModelSpec) -> dict[str, Any]:
        """The estimator parameters of ``spec`` with the study's imbalance weighting applied.

        ``imbalance.weighting: balanced`` sets ``class_weight='balanced'`` on every binary model
        whose family takes weights, unless the model's own ``params`` set ``class_weight``.
        """
        from pmed.models.registry import get_family

        params = dict(spec.params)
        if (self.target.task == "binary" and self.imbalance.weighting == "balanced"
                and get_family(spec.family).class_weight and "class_weight" not in params):
            params["class_weight"] = "balanced"
        return params

    def calibration_of(self, spec: ModelSpec) -> str | None:
        """The in-fold recalibration of ``spec``: its own ``calibration``, else the study's."""
        if self.target.task != "binary":
            return spec.calibration
        return spec.calibration or self.imbalance.recalibration

    def imbalance_summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records under ``imbalance``: the settings and, per model, what ran."""
        return {"weighting": self.imbalance.weighting, "recalibrate": self.imbalance.recalibration,
                "cv": self.imbalance.cv, "description": self.imbalance.describe(),
                "models": {m.label: {"class_weight": self.model_params(m).get("class_weight"),
                                     "calibration": self.calibration_of(m)} for m in self.models}}

    def path(self, p: str) -> Path:
        """Resolve a path written in the study, relative to the study file."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.base_dir / q)


def _line_of(text: str, loc: tuple) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its closest existing parent)."""
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(key)]
            if not match:
                break
            line = match[0][0].start_mark.line + 1
            node = match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _fmt_loc(loc: tuple) -> str:
    out = ""
    for k in loc:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "(top level)"


def load_study(path: str | Path) -> Study:
    """Read and validate a study YAML.

    Raises
    ------
    StudyError
        Naming the file, the key (``models[1].family``), its line, and what is allowed.
    """
    import yaml

    path = Path(path)
    from pmed.io.text import read_text

    text = read_text(path, what="study file", error=StudyError)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise StudyError(f"not valid YAML: {getattr(e, 'problem', e)}", file=path, where=where,
                         fix="check indentation and colons") from None
    if not isinstance(raw, dict):
        raise StudyError("a study must be a YAML mapping (name:, data:, target:, …)", file=path)
    try:
        study = Study.model_validate(raw)
    except PydanticValidationError as e:
        err = e.errors()[0]
        loc = tuple(x for x in err["loc"])
        line = _line_of(text, loc)
        key = _fmt_loc(loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            msg = f"required key {loc[-1]!r} is missing"
        more = f" (and {len(e.errors()) - 1} more problem(s))" if len(e.errors()) > 1 else ""
        raise StudyError(
            msg + more,
            file=path,
            where=f"key {key}" + (f", line {line}" if line else ""),
            fix="see docs/study.md for the study file's keys",
        ) from None
    study.base_dir = path.resolve().parent
    study.source_text = text
    study.source_path = path
    return study
