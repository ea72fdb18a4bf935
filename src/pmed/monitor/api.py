"""``run_monitor``: a deployed bundle's new data against its training summaries (the domain contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pmed.cohort import Block
from pmed.errors import BundleError, OptionError, ValidationError, shorten
from pmed.progress import Reporter, as_reporter
from pmed.result import DomainResult, make_provenance

__all__ = ["MonitorResult", "run_monitor"]


@dataclass
class MonitorResult(DomainResult):
    """What :func:`run_monitor` found: ``drift`` (all new rows against the training summaries),
    ``windows`` (per time window: its drift report and, with outcomes, its performance),
    ``scores`` (per patient: ``prediction`` and ``window``) and ``model`` (what was monitored).
    ``write`` gives ``drift.json`` (the whole report), ``features.csv`` (one row per feature),
    ``windows.csv`` and ``dashboard.html`` with its plots."""

    domain: ClassVar[str] = "monitor"
    block_name: ClassVar[str] = "monitor"

    drift: dict[str, Any] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    model: dict[str, Any] = field(default_factory=dict)

    def to_block(self) -> Block:
        """Each new patient's ``prediction`` and ``window`` (indexed by patient ID)."""
        return Block(self.scores.copy(), dict(self.provenance))

    def summary(self) -> dict[str, Any]:
        return {"drift_detected": bool(self.drift.get("drift_detected")),
                "drifted_features": list(self.drift.get("drifted_features", [])),
                "n_rows": self.drift.get("n_rows"), "n_windows": len(self.windows),
                "unseen_categories": dict(self.drift.get("unseen_categories") or {}),
                "windows_with_drift": [w["window"] for w in self.windows if w["drift"].get("drift_detected")]}

    def feature_table(self) -> pd.DataFrame:
        """One row per feature (and ``(predictions)``): PSI, test statistic and p-values, flag."""
        rows = []
        entries = dict(self.drift.get("features", {}))
        if self.drift.get("predictions"):
            entries["(predictions)"] = self.drift["predictions"]
        for name, e in entries.items():
            rows.append({"feature": name, "psi": e.get("psi"),
                         "statistic": e.get("ks_statistic", e.get("chi2")),
                         "test": "KS" if "ks_statistic" in e else "chi-squared",
                         "p_value": e.get("p_value"), "p_adjusted": e.get("p_adjusted"),
                         "missing_ref": e.get("missing_fraction_ref"), "missing_new": e.get("missing_fraction_new"),
                         "drift_detected": bool(e.get("drift_detected")),
                         "reasons": "; ".join(e.get("reasons") or []), "note": e.get("note")})
        return pd.DataFrame(rows)

    def window_table(self) -> pd.DataFrame:
        """One row per window: rows, drifted features and, with outcomes, the metrics with CIs."""
        rows = []
        for w in self.windows:
            row = {"window": w["window"], "n": w["drift"].get("n_rows"),
                   "drift_detected": bool(w["drift"].get("drift_detected")),
                   "drifted_features": ", ".join(w["drift"].get("drifted_features", []))}
            perf = w.get("performance")
            if perf and not perf.get("insufficient"):
                for k in ("auroc", "auprc", "brier", "calibration_in_the_large", "calibration_slope"):
                    m = perf.get(k) or {}
                    row[k], row[f"{k}_low"], row[f"{k}_high"] = m.get("estimate"), m.get("ci_low"), m.get("ci_high")
            elif perf:
                row["performance"] = f"insufficient: {perf.get('reason')}"
            rows.append(row)
        return pd.DataFrame(rows)

    def _write_files(self, out: Path) -> dict[str, Path]:
        from pmed import plots
        from pmed.io import write_table, write_text_atomic
        from pmed.io.jsonio import to_json
        from pmed.plots.monitor import metric_over_windows, psi_bars, psi_over_windows

        report = {"model": self.model, "drift": self.drift, "windows": self.windows}
        files = {"drift": write_text_atomic(out / "drift.json", to_json(report)),
                 "features": write_table(self.feature_table(), out / "features.csv", index=False)}
        if self.windows:
            files["windows"] = write_table(self.window_table(), out / "windows.csv", index=False)
        (out / "plots").mkdir(exist_ok=True)
        figs = {"psi.png": psi_bars(self.feature_table())}
        if len(self.windows) > 1:
            figs["psi_windows.png"] = psi_over_windows(self.windows)
            if any(w.get("performance") and not w["performance"].get("insufficient") for w in self.windows):
                figs["metrics_windows.png"] = metric_over_windows(self.windows)
        for name, fig in figs.items():
            files[name] = plots.save(fig, out / "plots" / name)
        files["dashboard"] = write_text_atomic(out / "dashboard.html", self._dashboard(sorted(figs)))
        return files

    def _dashboard(self, figures: list[str]) -> str:
        from pmed.report.html import _env

        return _env().get_template("monitor_dashboard.html.j2").render(
            model=self.model, drift=self.drift, features=self.feature_table().to_dict("records"),
            windows=self.window_table().to_dict("records"), figures=figures,
            created=self.provenance.get("created"))


def _read_new(data, *, outcome: str | None, time_col: str | None, id: str) -> tuple[pd.DataFrame, pd.Series | None,
                                                                           pd.Series | None, str | None]:
    from pmed.errors import InputError
    from pmed.io.tables import read_raw_table

    source = None
    if not isinstance(data, pd.DataFrame):
        source = str(data)
        # read as written (text for a CSV, Parquet's own types): the model's schema checks and
        # converts it once, in new_patient_features — a million rows are not to be read twice
        data = read_raw_table(data, dtype=object, what="new data file")
        if len(data) == 0:
            raise InputError(f"the file has a header ({len(data.columns)} columns) but no rows", file=source,
                             fix="check that the right file was given and that it was written completely")
        for col in (outcome, time_col):  # numbers written as text: numbers (a time order, a 0/1 outcome)
            if col is not None and col in data.columns and data[col].dtype == object:
                num = pd.to_numeric(data[col], errors="coerce")
                if num.notna().sum() == data[col].notna().sum() and num.notna().any():
                    data[col] = num
    if data.index.name is not None:
        df = data.reset_index()
    else:  # a caller's table is copied (it is changed below); a file's is this function's own
        df = data.copy() if source is None else data
    missing = [c for c in (outcome, time_col) if c is not None and c not in df.columns]
    if missing:
        raise ValidationError([f"column {shorten(c)} not found in the new data" for c in missing], file=source,
                              fix="name the outcome (--outcome) and time (--time-col) columns as in the file")
    y = df.pop(outcome) if outcome else None
    t = df.pop(time_col) if time_col else None
    return df, y, t, source


def _set_aside_unseen_categories(df: pd.DataFrame, schema) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Values of category columns the model never saw, replaced by missing for scoring.

    A deployed model meets a new ward code or a new assay name: monitoring must report it, not
    stop. Such a value is scored as missing (what the model does with a patient whose value is
    unknown) and kept, per column, as a series (the value where unseen, else missing) so that
    the drift report counts the new categories. A column declared not nullable is left as it is:
    its schema refuses the value with the allowed categories listed. ``df`` (run_monitor's own
    copy of the new data) is changed in place.
    """
    out, unseen = df, {}
    for name, spec in schema.columns.items():
        if spec.type != "category" or name not in df.columns or not spec.nullable:
            continue
        s = df[name]
        cats = list(spec.categories or ())
        known = {str(c) for c in cats}
        # as the schema reads a category (pmed.schema): the value itself, or its text stripped;
        # each distinct value is looked at once
        codes, uniq = pd.factorize(s.to_numpy(dtype=object), use_na_sentinel=True)
        text = [str(v).strip() for v in uniq]
        new = np.array([not (v in cats or t in known) for v, t in zip(uniq, text, strict=True)] + [False])
        bad = new[codes]
        if bad.any():
            ids = df[schema.id].astype(str).str.strip() if schema.id in df.columns else df.index.astype(str)
            shown = np.array(text + [None], dtype=object)[np.where(bad, codes, -1)]
            unseen[name] = pd.Series(shown, index=pd.Index(ids, name=schema.id))
            out[name] = s.where(~bad, None)
    return out, unseen


def _counts(raw: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in raw.dropna().value_counts().items()}


def _labels(times: pd.Series, window, *, source: str | None, time_col: str | None) -> pd.Series:
    """:func:`window_labels`, with a time that does not parse named by file, column and line."""
    from pmed.monitor.drift import window_labels

    try:
        return window_labels(times, window)
    except ValidationError as e:
        if source is None:
            raise
        from pmed.errors import format_rows
        from pmed.monitor.drift import _is_numeric

        ts = times.reset_index(drop=True)
        if _is_numeric(ts):
            bad = ~np.isfinite(pd.to_numeric(ts, errors="coerce").to_numpy(dtype=float))
        else:
            bad = pd.to_datetime(ts, errors="coerce", utc=True, format="mixed").isna().to_numpy()
        if not bad.any():
            raise
        text = Path(source).name.lower().removesuffix(".gz").endswith((".csv", ".tsv", ".txt"))
        # a text table's line: after its one header line; a Parquet file has rows, counted from 1
        where = f"lines {format_rows(np.flatnonzero(bad) + 2)}" if text else f"rows {format_rows(np.flatnonzero(bad) + 1)}"
        raise ValidationError([f"column {shorten(time_col)}: {int(bad.sum())} of {len(ts)} times are missing or "
                               f"do not parse, at {where}"], file=source,
                              fix=e.fix or "give every row a date, e.g. '2024-03-15'") from None


def run_monitor(
    model,
    data,
    *,
    outcome: str | None = None,
    time_col: str | None = None,
    window: str | int | None = None,
    blocks: dict[str, str | Path] | None = None,
    alpha: float = 0.05,
    psi_threshold: float = 0.2,
    n_boot: int = 200,
    seed: int = 0,
    progress: Reporter | bool | None = None,
) -> MonitorResult:
    """Compare new patients with what a bundle was trained on: drift, and performance when the
    outcomes have arrived.

    Parameters
    ----------
    model
        A bundle folder (``DIR/model`` of ``pmed run``) or a loaded
        :class:`~pmed.study.bundle.ModelBundle`; it must hold reference summaries
        (``manifest.json`` ``reference``, written by ``pmed run`` since bundle format 2 of
        this pmed).
    data
        The new patients: a table (file or DataFrame) as for ``pmed predict``, with the
        outcome and time columns when given.
    outcome
        The observed outcome column (binary studies: the same labels as in training). With it,
        AUROC, AUPRC, Brier and calibration intercept and slope are computed per window with
        CIs, beside the validation values of the bundle.
    time_col, window
        A date column and ``"month"``, ``"week"`` or a number N of rows per window (in time
        order); without them all rows form one window.
    blocks
        The bundle's modality blocks (``NAME=FILE``), as for ``pmed predict``.
    alpha, psi_threshold
        The alert rule of :func:`pmed.monitor.drift_report`: a feature drifts when its
        Benjamini–Hochberg-corrected p-value is below ``alpha`` and the shift is large (PSI ≥
        ``psi_threshold``, Cramér's V ≥ 0.1, or missingness changed by ≥ 10 points).
    n_boot, seed
        Bootstrap resamples and seed of the performance CIs.
    progress
        ``True`` for a progress bar, or a :class:`pmed.progress.Reporter` (reading and scoring,
        then the overall drift and each window); silent by default.

    Returns
    -------
    MonitorResult
        ``.write(out)`` writes ``drift.json``, ``features.csv``, ``windows.csv``,
        ``dashboard.html`` and ``plots/``. Values of a category column never seen in
        training are not an error: they are scored as missing, counted by the drift tests
        (``new_categories`` of the feature) and listed in ``drift["unseen_categories"]``
        (column → value → rows). A window too small for a metric says ``insufficient`` with
        the reason instead of numbers.

    Raises
    ------
    BundleError
        A bundle without reference summaries (trained before they existed): retrain it.
    ValidationError
        New data lacking model columns, an outcome with labels other than the training ones,
        a time column that does not parse (file, column and lines named).
    """
    from pmed.monitor.drift import drift_report, performance_by_window
    from pmed.study import load_bundle
    from pmed.study.predict import new_patient_features

    bundle = model if hasattr(model, "manifest") else load_bundle(model)
    ref = bundle.manifest.get("reference")
    if not ref:
        raise BundleError("this bundle has no reference summaries to monitor against", file=str(bundle.path),
                          fix="retrain it with this pmed (pmed run): bundles now store them")
    if (time_col is None) != (window is None):
        raise OptionError("give --time-col and --window together (or neither, for one window)",
                          where="--window" if window is None else "--time-col",
                          fix="e.g. --time-col admitted --window month")
    schema = bundle.input_schema()
    reporter = as_reporter(progress)
    reporter.start(2, "reading and scoring")
    reporter.advance("reading the new patients", n=0)
    df, y_raw, t, source = _read_new(data, outcome=outcome, time_col=time_col, id=schema.id)
    df, unseen = _set_aside_unseen_categories(df, schema)
    reporter.advance("features and predictions")
    X = new_patient_features(bundle, df, blocks=blocks)
    pred = bundle.predict(X, source=source)
    reporter.advance()
    col = "probability" if bundle.task == "binary" else "prediction" if bundle.task == "continuous" else "risk"
    p = pred[col].to_numpy(dtype=float)
    labels = (_labels(t.set_axis(X.index), window, source=source, time_col=time_col) if t is not None
              else pd.Series("all", index=X.index, dtype=object))
    y = None
    if y_raw is not None:
        if bundle.task != "binary":
            raise OptionError("performance monitoring is for binary models here", where="--outcome",
                              fix="leave out --outcome for drift only")
        from pmed.study.run import check_target_labels, encode_target

        check_target_labels(y_raw, bundle.manifest.get("target_labels"), source=source)
        y = encode_target(y_raw.set_axis(X.index), task="binary", positive=bundle.manifest.get("positive"),
                          source=source)
    features = [c for c in ref["columns"] if c in X.columns]
    X_drift = X[features].copy(deep=False)  # its own columns: the unseen categories go in here, not into X
    for name, raw in unseen.items():  # drift sees what arrived; the model saw it as missing
        if name in X_drift.columns:
            X_drift[name] = X_drift[name].astype(object).where(X_drift[name].notna(),
                                                               raw.reindex(X.index).astype(object))
    windows_of = pd.unique(labels)
    # one window of every row without outcomes is the overall report itself: no step of its own
    own_steps = len(windows_of) > 1 or y is not None
    reporter.start(1 + len(windows_of) * own_steps, "drift and performance")
    reporter.advance("drift of every feature", n=0)
    overall = drift_report(ref, X_drift, predictions=p, alpha=alpha, psi_threshold=psi_threshold)
    reporter.advance()
    overall["unseen_categories"] = {name: _counts(raw) for name, raw in unseen.items()}
    # the validation values: the manifest's metrics, and the out-of-fold calibration the reference keeps
    val = {**((bundle.manifest.get("metrics") or {}).get("metrics") or {}), **(ref.get("metrics") or {})}
    windows = []
    for w in windows_of:
        rows = np.flatnonzero((labels == w).to_numpy())
        whole = len(rows) == len(X_drift)  # one window of every row (no --time-col): the overall report
        if own_steps:
            reporter.advance(f"window {w}", n=0)
        entry = {"window": str(w), "drift": overall if whole else drift_report(
            ref, X_drift.iloc[rows], predictions=p[rows], alpha=alpha, psi_threshold=psi_threshold)}
        if y is not None:
            yy = y.iloc[rows].to_numpy(dtype=float)
            ok = ~np.isnan(yy)
            entry["performance"] = performance_by_window(yy[ok], p[rows][ok], reference_metrics=val,
                                                         n_boot=n_boot, seed=seed)[0]
        windows.append(entry)
        if own_steps:
            reporter.advance()
    scores = pd.DataFrame({"prediction": p, "window": labels.to_numpy()}, index=X.index)
    m = bundle.manifest
    model_info = {"name": (m.get("model") or {}).get("name"), "task": m.get("task"), "target": m.get("target"),
                  "pipeline_sha256": m.get("pipeline_sha256"), "path": str(bundle.path),
                  "validation": {k: val[k] for k in ("auroc", "auprc", "brier", "calibration_in_the_large",
                                                     "calibration_slope") if k in val}}
    prov = make_provenance("monitor", inputs={"data": source, "model": str(bundle.path)},
                           options={"outcome": outcome, "time_col": time_col, "window": window, "alpha": alpha,
                                    "psi_threshold": psi_threshold, "n_boot": n_boot, "seed": seed})
    return MonitorResult(drift=overall, windows=windows, scores=scores, model=model_info, provenance=prov)
