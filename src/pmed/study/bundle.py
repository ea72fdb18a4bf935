"""Model bundles: a fitted pipeline with everything needed to trust and apply it later.

A bundle is a folder, written atomically::

    model/
      pipeline.skops     the fitted pipeline (skops: loading never runs arbitrary pickled code)
      treatment.skops    studies with a treatment section: each patient's outcome under every
                         arm (:class:`pmed.effects.options.TreatmentOptions`), described in the
                         manifest's ``treatment``
      manifest.json      format version, task, target, features and their specs, input schema,
                         training-data fingerprint, versions, metrics, SHA-256 of pipeline.skops
      study.yaml         the study file that produced it
      SHA256SUMS         the SHA-256 of every other file of the folder (``sha256sum`` format)

:func:`load_bundle` checks every file against ``SHA256SUMS`` (a changed, missing or added file
is refused: a one-byte edit of the manifest's threshold changes predictions as surely as an
edited pipeline), then the format version and the library versions, before it unpickles
anything, and refuses with a message that says what to do. :func:`write_sums` and
:func:`verify_sums` are shared with the imaging model folders.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import BundleError, ValidationError, format_rows, shorten
from pmed.io._atomic import atomic_dir
from pmed.io.jsonio import to_json
from pmed.schema import ColumnSpec, TableSchema

__all__ = [
    "ModelBundle",
    "save_bundle",
    "load_bundle",
    "data_fingerprint",
    "write_sums",
    "verify_sums",
    "BUNDLE_FORMAT_VERSION",
    "SUMS_NAME",
]

# 2: SHA256SUMS covers every file (1 hashed pipeline.skops only, inside the manifest)
BUNDLE_FORMAT_VERSION = 2
#: The file listing the SHA-256 of every other file of a bundle or model folder.
SUMS_NAME = "SHA256SUMS"
#: Rows scored at a time by :meth:`ModelBundle.predict`: the preprocessing's intermediate
#: arrays of a million rows overflow the caches (1M × 100: 38 s in one piece, 6 s in chunks).
PREDICT_CHUNK_ROWS = 200_000
#: Largest batch that :meth:`ModelBundle.predict` scores with the numpy replay of the pipeline
#: (:meth:`ModelBundle.scorer`); larger batches go to scikit-learn, which is faster on them.
COMPILED_MAX_ROWS = 2_000
_MODIFIED = "the bundle was modified after it was written; retrain or restore it"

# Types a pmed pipeline legitimately contains beyond what skops trusts by default.
_TRUSTED_TYPES = {
    "numpy.dtype",
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "pmed.timeseries.grud.GRUDClassifier",
    "pmed.models.image.ImagePathClassifier",
    # survival families (pmed.survival.models) and the scikit-survival parts they hold
    "pmed.survival.models.CoxPH",
    "pmed.survival.models.Coxnet",
    "pmed.survival.models.SurvivalForest",
    "pmed.survival.models.BoostedSurvival",
    "pmed.survival.models.KaplanMeier",
    "sksurv.functions.StepFunction",
    "sksurv.linear_model.coxnet.CoxnetSurvivalAnalysis",
    "sksurv.linear_model.coxph.BreslowEstimator",
    "sksurv.ensemble.forest.RandomSurvivalForest",
    "sksurv.tree.tree.SurvivalTree",
    "sksurv.ensemble.boosting.GradientBoostingSurvivalAnalysis",
    "sksurv.ensemble.survival_loss.CoxPH",
    # treatment options (a study's treatment section): arrays beside scikit-learn's preprocessing
    "pmed.effects.options.TreatmentOptions",
    # multimodal fusion (pmed.fusion): plain dicts of fitted scikit-learn estimators inside
    "pmed.fusion.late.LateFusion",
    "pmed.fusion.joint.JointFusion",
    # a bundle updated by pmed.monitor.update_bundle (recalibrate): numbers around the parent's pipeline
    "pmed.monitor.update.Recalibrated",
    "pmed.fusion.early.ModalityIndicators",
    # differentially private families (pmed.privacy.dp): NumPy coefficients and a budget dict
    "pmed.privacy.dp.DPLogisticClassifier",
    "pmed.privacy.dp.DPMLPClassifier",
}
# Libraries whose version must match for a pickled estimator to behave identically.
_PINNED = ("scikit-learn", "lightgbm")
_REPORTED = ("pmed", "numpy", "pandas", "scipy", "scikit-learn", "lightgbm", "skops")


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _rel_files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` (POSIX relative paths) except the sums file."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.relative_to(folder).as_posix() != SUMS_NAME)


def write_sums(folder: str | Path, files: list[str] | None = None) -> Path:
    """Write ``folder/SHA256SUMS``: the SHA-256 of ``files`` (default: every file in ``folder``).

    Parameters
    ----------
    folder
        The bundle or model folder.
    files
        Relative paths to cover; ``None`` covers every file under ``folder``.

    Returns
    -------
    pathlib.Path
        The sums file, written atomically (so it appears only once complete).
    """
    from pmed.io._atomic import write_text_atomic

    folder = Path(folder)
    names = _rel_files(folder) if files is None else sorted(files)
    # sha256sum's format: `sha256sum -c SHA256SUMS` checks a bundle without pmed
    text = "".join(f"{_sha256(folder / n)}  {n}\n" for n in names)
    return write_text_atomic(folder / SUMS_NAME, text)


def verify_sums(folder: str | Path, *, strict: bool = True,
                required: tuple[str, ...] = ()) -> dict[str, str]:
    """Check every file listed in ``folder/SHA256SUMS``; refuse any difference.

    Parameters
    ----------
    folder
        The bundle or model folder.
    strict
        Also refuse files in ``folder`` that the sums do not list (a study bundle holds
        nothing else; an imaging output folder holds other outputs beside its model).
    required
        Files that must be among those listed (the ones the loader reads).

    Returns
    -------
    dict
        Relative path -> SHA-256 of the verified files.

    Raises
    ------
    BundleError
        ``SHA256SUMS`` missing or unreadable, or a file changed, missing or added; the
        message names the file.
    """
    folder = Path(folder)
    sums_file = folder / SUMS_NAME
    if not sums_file.is_file():
        raise BundleError(f"{SUMS_NAME} is missing, so no file of the folder can be trusted",
                          file=folder, fix=_MODIFIED)
    listed: dict[str, str] = {}
    try:
        lines = sums_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(f"{SUMS_NAME} cannot be read ({type(e).__name__})", file=sums_file,
                          fix=_MODIFIED) from None
    for i, line in enumerate(lines, 1):
        digest, sep, name = line.partition("  ")
        parts = Path(name).parts
        bad = (not sep or len(digest) != 64 or not name or Path(name).is_absolute() or ".." in parts
               or name == SUMS_NAME or any(c not in "0123456789abcdef" for c in digest))
        if bad:
            raise BundleError(f"{SUMS_NAME} line {i} is not '<sha256>  <file>'", file=sums_file,
                              where=f"line {i}", fix=_MODIFIED)
        listed[name] = digest
    for name in required:
        if name not in listed:
            raise BundleError(f"{name} is not covered by {SUMS_NAME}", file=sums_file, fix=_MODIFIED)
    for name, digest in listed.items():
        f = folder / name
        if not f.is_file():
            raise BundleError(f"{name} is listed in {SUMS_NAME} but missing", file=f, fix=_MODIFIED)
        if _sha256(f) != digest:
            raise BundleError(f"{name} does not match the SHA-256 in {SUMS_NAME}: the file was modified "
                              "or corrupted", file=f, fix=_MODIFIED)
    if strict:
        extra = [n for n in _rel_files(folder) if n not in listed]
        if extra:
            raise BundleError(f"file(s) not written with the bundle: {', '.join(extra[:5])}"
                              + (" …" if len(extra) > 5 else ""), file=folder, fix=_MODIFIED)
    return listed


def data_fingerprint(X: pd.DataFrame, y: pd.Series | np.ndarray | None = None) -> str:
    """SHA-256 over the feature table (values, index, column names) and the outcome."""
    h = hashlib.sha256()
    h.update(json.dumps(list(map(str, X.columns))).encode())
    h.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    if y is not None:
        h.update(np.ascontiguousarray(np.asarray(y, dtype=float)).tobytes())
    return h.hexdigest()


def _in_chunks(score, X: pd.DataFrame) -> np.ndarray:
    """``score(X)`` computed on :data:`PREDICT_CHUNK_ROWS` rows at a time (the same numbers)."""
    if len(X) <= PREDICT_CHUNK_ROWS:
        return np.asarray(score(X))
    return np.concatenate([np.asarray(score(X.iloc[i:i + PREDICT_CHUNK_ROWS]))
                           for i in range(0, len(X), PREDICT_CHUNK_ROWS)])


@dataclass
class ModelBundle:
    """A loaded bundle: the fitted ``pipeline`` and its ``manifest``."""

    pipeline: Any
    manifest: dict
    path: Path
    #: each patient's outcome under every arm (a study with a treatment section), else None
    treatment_model: Any = None

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def feature_names(self) -> list[str]:
        return list(self.manifest["features"])

    def scorer(self) -> Any:
        """What scores checked features: the pipeline, or its numpy replay where that is exact.

        For a binary or continuous model whose preprocessing :func:`pmed.models.compiled.compile_pipeline`
        replays, the replay is used once it gives the pipeline's very numbers on probe rows made
        from the manifest (each category, the typical value, the range ends, missing values):
        the same predictions at a fraction of scikit-learn's per-call cost on one patient (a
        service's request). Anything else is scored by the pipeline itself.
        """
        cached = self.__dict__.get("_scorer")
        if cached is None:
            cached = self.pipeline
            if self.task in ("binary", "continuous"):
                from pmed.models.compiled import compile_pipeline

                fast = compile_pipeline(self.pipeline)
                probe = self._probe_rows() if fast is not None else None
                if probe is not None and fast.verify(probe, method="predict_proba" if self.task == "binary"
                                                     else "predict"):
                    cached = fast
            self.__dict__["_scorer"] = cached
        return cached

    def _probe_rows(self) -> pd.DataFrame | None:
        """Checked feature rows covering each category, the typical value, the range ends and
        missing values of every feature (:meth:`scorer`'s test of the compiled path)."""
        specs = self.manifest.get("feature_specs", {})
        ref = self.manifest.get("reference_values") or {}
        values = {}
        for c in self.feature_names:
            spec = specs.get(c) or {}
            if spec.get("type") == "string":
                return None
            if spec.get("type") == "category":
                values[c] = [*spec["categories"], None]
                continue
            r = ref.get(c)
            r = float(r) if isinstance(r, int | float) and not isinstance(r, bool) else 0.0
            lo, hi = spec.get("min"), spec.get("max")
            vals = [r, np.nan, lo if lo is not None else r - 1.5, hi if hi is not None else r + 2.5]
            values[c] = vals + [0.0, 1.0] if (lo is None or lo <= 0) and (hi is None or hi >= 1) else vals
        n = max((len(v) for v in values.values()), default=0)
        if n == 0:
            return None
        raw = pd.DataFrame({c: [v[k % len(v)] for k in range(n)] for c, v in values.items()})
        try:
            return self.check_features(raw)
        except Exception:
            return None

    def input_schema(self) -> TableSchema:
        """Schema of the patient table the model was trained on."""
        return TableSchema.from_dict(self.manifest["input_schema"])

    def check_features(self, X: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
        """Select, order and check the model's features in ``X``; refuse what does not fit.

        Raises
        ------
        ValidationError
            Missing columns, categories the model never saw declared, values outside the
            training schema's range.
        """
        problems = []
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            problems.append(
                f"missing feature column(s) the model needs: {', '.join(missing[:12])}"
                + (" …" if len(missing) > 12 else "")
            )
        if problems:
            raise ValidationError(problems, file=source,
                                  fix="provide every column of the training data (see manifest.json 'features')")
        # column by column, without selecting them first (a copy of the whole table)
        specs = self.manifest.get("feature_specs", {})
        out = {}

        def rows(mask) -> str:
            # where, by line of the file read (header + 1) or row of the table: never the patient's ID
            pos = np.flatnonzero(np.asarray(mask, dtype=bool))
            return f"lines {format_rows(pos + 2)}" if source else f"rows {format_rows(pos + 1)}"

        for c in self.feature_names:
            s = X[c]
            spec = specs.get(c)
            if spec and spec["type"] == "string":  # e.g. image paths, passed as written
                out[c] = s.astype("object")
                continue
            if spec and spec["type"] == "category":
                # compared and encoded as text, as Cohort.features gives them to the model
                cats = [str(v) for v in spec["categories"]]
                if (isinstance(s.dtype, pd.CategoricalDtype) and not s.cat.ordered
                        and list(s.cat.categories) == cats):
                    out[c] = s.array  # already the training's categories (Cohort.features' output)
                    continue
                known = set(cats)
                # each distinct value looked at once (a million rows hold a handful of categories)
                codes, uniq = pd.factorize(s.to_numpy(dtype=object), use_na_sentinel=True)
                text = np.array([str(v) for v in uniq] + [np.nan], dtype=object)
                vals = text[codes]
                bad = np.append(np.array([str(v) not in known for v in uniq], dtype=bool), False)[codes]
                if bad.any():
                    problems.append(
                        f"column {c!r}: values {', '.join(shorten(v) for v in pd.unique(vals[bad])[:5])} "
                        f"at {rows(bad)} are not among the training categories "
                        f"{', '.join(shorten(v, 30) for v in cats[:20])}{' …' if len(cats) > 20 else ''}"
                    )
                    vals[bad] = np.nan
                out[c] = pd.Categorical(vals, categories=cats)
            else:
                if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                    arr = s.to_numpy(dtype=float, na_value=np.nan)  # already numbers (the usual case)
                else:
                    num = pd.to_numeric(s.astype("object") if s.dtype == "boolean" else s, errors="coerce")
                    bad = num.isna() & s.notna()
                    if bad.any():
                        problems.append(f"column {c!r}: non-numeric values at {rows(bad)}")
                    arr = num.to_numpy(dtype=float, na_value=np.nan)
                lo, hi = (spec or {}).get("min"), (spec or {}).get("max")
                viol = np.zeros(len(arr), dtype=bool)
                with np.errstate(invalid="ignore"):
                    if lo is not None:
                        viol |= arr < lo
                    if hi is not None:
                        viol |= arr > hi
                if viol.any():
                    problems.append(
                        f"column {c!r}: {', '.join(f'{v:g}' for v in arr[viol][:5])} outside the "
                        f"schema range {lo}–{hi} at {rows(viol)}"
                    )
                out[c] = arr
        if problems:
            raise ValidationError(problems, file=source,
                                  fix="correct these values; the model refuses inputs outside its schema")
        # every column above is a new array, or X's own categorical unchanged: no second copy
        return pd.DataFrame(out, index=X.index, copy=False)

    def predict(self, X: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
        """Predictions for the rows of ``X``.

        Returns
        -------
        pandas.DataFrame
            Binary: ``probability`` (of the positive outcome), ``predicted_class`` (0/1 at
            the bundle's threshold) and ``prediction_set`` (conformal, e.g. ``"0|1"``).
            Continuous: ``prediction``, ``interval_low``, ``interval_high`` (conformal).
            A fused model (``fusion:``) adds ``modalities_used`` (e.g. ``clinical+genome``).
            Survival: ``risk`` (higher = worse), ``surv_<t>`` = P(event-free at t) at each
            horizon of the study, ``surv_<t>_low``/``surv_<t>_high`` after each where the bundle
            has interval terms (95 %; by family: cox delta method, km Greenwood, rsf
            infinitesimal jackknife, coxnet/gbsa bootstrap refits — none with
            ``interval_bootstrap: 0``; :mod:`pmed.survival.intervals`, and the manifest's
            ``survival.intervals.method`` says what the interval covers), and
            ``median_survival`` (NaN where the predicted curve stays above 0.5 within the
            training follow-up).
        """
        return self._predict_checked(self.check_features(X, source=source))

    def _predict_checked(self, X: pd.DataFrame) -> pd.DataFrame:
        # predict on features check_features gave (pmed.study.predict's what-if variants are
        # made from checked rows: checking them again would double a service request's cost)
        from pmed.evaluate.conformal import apply_conformal

        if self.task == "survival":
            from pmed.study.survival import survival_predictions
            from pmed.survival.models import predict_median

            hs = self.manifest["survival"]["horizons"]
            out = survival_predictions(self.pipeline, X, hs)
            terms = self.manifest["survival"].get("intervals")
            if terms:  # an interval per horizon, by the family's method (pmed.survival.intervals)
                from pmed.study.survival import surv_name
                from pmed.survival.intervals import survival_intervals

                iv = survival_intervals(self.pipeline, X, terms, hs)
                cols = ["risk"]
                for h in hs:
                    cols += [surv_name(h), f"{surv_name(h)}_low", f"{surv_name(h)}_high"]
                out = pd.concat([out, iv], axis=1)[cols]
            out["median_survival"] = predict_median(self.pipeline, X)
            return out
        # the numpy replay pays per column, scikit-learn per call: the replay for a few patients
        # (a service's request), scikit-learn for a batch (a million rows: 25 s against 4 s)
        scorer = self.scorer() if len(X) <= COMPILED_MAX_ROWS else self.pipeline
        if self.task == "binary":
            p = _in_chunks(lambda part: scorer.predict_proba(part)[:, 1], X)
            thr = self.manifest.get("threshold", 0.5)
            out = pd.DataFrame({"probability": p, "predicted_class": (p >= thr).astype(int)}, index=X.index)
        else:
            p = _in_chunks(scorer.predict, X)
            out = pd.DataFrame({"prediction": p}, index=X.index)
        used = getattr(self.pipeline, "modalities_used", None)
        if callable(used):  # a fused model (pmed.fusion) says which of a patient's modalities it used
            out["modalities_used"] = np.asarray(used(X), dtype=object)
        conformal = self.manifest.get("conformal")
        if conformal:
            if conformal.get("without") and "modalities_used" in out:
                conformal = {**conformal, "quantile": self.conformal_quantiles(out["modalities_used"])}
            extra = apply_conformal(p, conformal, task=self.task)
            out[list(extra.columns)] = extra.to_numpy()
        if "modalities_used" in out:  # last, as before the intervals
            out["modalities_used"] = out.pop("modalities_used")
        return out

    def conformal_quantiles(self, modalities_used) -> np.ndarray:
        """Each patient's conformal threshold, by the modalities its prediction used.

        A fused model's bundle holds the threshold calibrated on validation patients with every
        modality (``conformal.quantile``) and, per modality, on those whose modality was masked
        (``conformal.without``, :mod:`pmed.study.fusion`). A patient lacking modalities gets the
        largest threshold among the full one and those of its missing modalities: its interval
        is never narrower than with every modality, and with two missing is as wide as the wider
        of the two (no calibration exists for that combination).
        """
        c = self.manifest["conformal"]
        q_full, without = float(c["quantile"]), c.get("without") or {}
        names = list(c.get("modalities") or without)
        out = []
        for used in modalities_used:
            have = set(str(used).split("+")) if isinstance(used, str) and used else set()
            qs = [float(without[m]) for m in names if m not in have and m in without]
            out.append(max([q_full, *qs]))
        return np.asarray(out, dtype=float)

    def percentile(self, prediction: float) -> float:
        """Percent of the training population (out-of-fold) predicted lower than ``prediction``."""
        q = np.asarray(self.manifest.get("population_predictions") or [], dtype=float)
        if len(q) == 0:
            return float("nan")
        return float(100 * np.interp(prediction, q, np.linspace(0, 1, len(q))))


def save_bundle(
    path: str | Path,
    pipeline: Any,
    *,
    task: str,
    target: str,
    X: pd.DataFrame,
    y: pd.Series,
    feature_specs: dict[str, ColumnSpec],
    input_schema: TableSchema | None,
    blocks: dict[str, str] | None = None,
    metrics: dict | None = None,
    study_text: str = "",
    threshold: float = 0.5,
    extra: dict | None = None,
    treatment: tuple[Any, dict] | None = None,
) -> Path:
    """Write a bundle folder atomically and return its path.

    ``treatment`` is ``(model, description)``: the fitted
    :class:`~pmed.effects.options.TreatmentOptions` (written to ``treatment.skops``) and what the
    manifest says of it under ``treatment``.
    """
    import skops.io as sio

    path = Path(path)
    with atomic_dir(path) as tmp:
        sio.dump(pipeline, tmp / "pipeline.skops")
        if treatment is not None:
            sio.dump(treatment[0], tmp / "treatment.skops")
        manifest = {
            "format": "pmed.model",
            "version": BUNDLE_FORMAT_VERSION,
            "task": task,
            "target": target,
            "threshold": threshold,
            "features": list(map(str, X.columns)),
            "feature_specs": {
                c: {k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in vars(spec).items() if v is not None}
                for c, spec in feature_specs.items()
            },
            "input_schema": input_schema.to_dict() if input_schema else None,
            "blocks": blocks or {},
            "training_data": {
                "n_rows": int(len(X)),
                "n_features": int(X.shape[1]),
                "fingerprint_sha256": data_fingerprint(X, y),
            },
            "versions": {p: _version(p) for p in _REPORTED},
            "pipeline_sha256": _sha256(tmp / "pipeline.skops"),
            "metrics": metrics or {},
            **(extra or {}),
        }
        if treatment is not None:
            manifest["treatment"] = {**treatment[1], "file": "treatment.skops"}
        (tmp / "manifest.json").write_text(to_json(manifest))
        (tmp / "study.yaml").write_text(study_text)
        # last: covers the manifest and everything else; atomic_dir moves the folder in whole
        write_sums(tmp)
    return path


def load_bundle(path: str | Path) -> ModelBundle:
    """Verify and load a bundle written by :func:`save_bundle`.

    Raises
    ------
    BundleError
        The folder or a file is missing, a file does not match ``SHA256SUMS`` or is not listed
        there (modified or corrupted), the format is other than this pmed's (bundles of format 1,
        written before every file was hashed, must be retrained), or scikit-learn/LightGBM
        versions differ from those it was trained with.
    """

    path = Path(path)
    mf, pl = path / "manifest.json", path / "pipeline.skops"
    if not mf.exists() or not pl.exists():
        raise BundleError("not a pmed model bundle (manifest.json or pipeline.skops missing)",
                          file=path, fix="point at the model/ folder written by 'pmed run'")
    if not (path / SUMS_NAME).exists():
        # format 1 bundles had no SHA256SUMS: say so rather than call them tampered
        try:
            old = json.loads(mf.read_text()).get("version") == 1
        except (OSError, ValueError, AttributeError):
            old = False
        if old:
            raise BundleError(
                f"bundle format version 1 is not supported (this pmed reads {BUNDLE_FORMAT_VERSION}, "
                f"which checks every file against {SUMS_NAME})", file=mf,
                fix="retrain the model with this pmed ('pmed run'), or use the pmed version that wrote it")
    # every file, the manifest included, before anything is parsed or unpickled
    verify_sums(path, strict=True, required=("manifest.json", "pipeline.skops"))
    try:
        manifest = json.loads(mf.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"manifest.json is not valid JSON: {e}", file=mf) from None
    if manifest.get("format") != "pmed.model":
        raise BundleError("manifest.json is not a pmed model manifest", file=mf)
    if manifest.get("version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {manifest.get('version')} is not supported "
            f"(this pmed reads {BUNDLE_FORMAT_VERSION})", file=mf,
            fix="retrain the model with this pmed, or use the pmed version that wrote it")
    if _sha256(pl) != manifest.get("pipeline_sha256"):  # also checked by SHA256SUMS; kept as a second seal
        raise BundleError(
            "pipeline.skops does not match the SHA-256 in manifest.json: the file was modified "
            "or corrupted", file=pl, fix="do not use this bundle; retrain or restore it from a trusted copy")
    stale = [
        f"{p} {manifest['versions'].get(p)} (installed: {_version(p)})"
        for p in _PINNED
        if manifest.get("versions", {}).get(p) != _version(p)
    ]
    if stale:
        raise BundleError(
            "the bundle was trained with other library versions: " + "; ".join(stale),
            file=path,
            fix="install those versions (pip install 'scikit-learn==…') or retrain with 'pmed run'",
        )
    pipeline = _load_trusted(pl)
    treatment_model = None
    if manifest.get("treatment"):
        tf = path / "treatment.skops"
        if not tf.exists():  # listed in SHA256SUMS when written, so only a hand-made manifest lacks it
            raise BundleError("the manifest describes a treatment model but treatment.skops is missing", file=path,
                              fix="do not use this bundle; retrain it with 'pmed run'")
        treatment_model = _load_trusted(tf)
    return ModelBundle(pipeline=pipeline, manifest=manifest, path=path, treatment_model=treatment_model)


def _load_trusted(file: Path) -> Any:
    """Load a skops file whose types are all scikit-learn's or on pmed's explicit list."""
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(file=file))
    # scikit-learn's own classes and functions (CV splitters, scorers inside a tuned model)
    # construct no arbitrary code; anything else must be on the explicit list
    unknown = {t for t in untrusted - _TRUSTED_TYPES if not t.startswith("sklearn.")}
    if unknown:
        raise BundleError(f"the {file.stem} contains types pmed does not trust: {', '.join(sorted(unknown))}",
                          file=file, fix="only load bundles written by pmed")
    return sio.load(file, trusted=sorted(untrusted))
