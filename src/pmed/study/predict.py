"""Apply a model bundle to new patients, and say which of their factors drove the prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.cohort import Cohort
from pmed.errors import OptionError, PmedWarning, ValidationError, shorten
from pmed.io.tables import read_table, write_table
from pmed.study.bundle import ModelBundle, load_bundle

__all__ = ["predict_patients", "explain_patient", "predict_and_explain", "new_patient_features", "write_patient_reports",
           "is_report_folder", "check_report_folder", "treatment_options", "read_pgx_recommendations",
           "treatment_options_section"]

#: The header of the index a patient-report folder holds: how a later run recognises the folder.
_INDEX_HEADER = "patient_id,report"
#: The prediction column the what-if contributions of :func:`explain_patient` are measured on.
_VALUE_COLUMN = {"binary": "probability", "survival": "risk"}


def new_patient_features(
    bundle: ModelBundle,
    patients: str | Path | pd.DataFrame,
    *,
    blocks: Mapping[str, str | Path] | None = None,
) -> pd.DataFrame:
    """Read new patients (and their modality files) into the model's feature table.

    The patient table is validated against the schema the model was trained with; blocks the
    model needs (for example ``genotypes``) must be given, and every patient must be in them —
    or, for a table given as a DataFrame, their columns may stand beside the patient's (every
    model feature the patient schema lacks, by name: what a service request carries).
    """
    from pmed.study.run import read_block

    schema = bundle.input_schema()
    source = None
    inline = False
    if isinstance(patients, pd.DataFrame):
        df = schema.validate(patients.reset_index() if patients.index.name == schema.id else patients)
        # the blocks' columns given beside the patient's (a service request, an exported table;
        # kept by the validation as undeclared columns): every feature the patient schema does
        # not hold must then be there, by name
        block_cols = [c for c in bundle.feature_names if c not in schema.columns]
        inline = bool(block_cols) and set(block_cols) <= set(df.columns)
    else:
        source = str(patients)
        df = read_table(patients, schema=schema)
    needed = dict(bundle.manifest.get("blocks", {}))
    given = dict(blocks or {})
    missing = [n for n in needed if n not in given]
    if not needed or (missing and inline and not given):
        # the patient table alone: what Cohort(df).features(["patients"]) gives, without its
        # copies of a table that is already this function's own (a million rows: seconds each)
        from pmed.cohort import _model_ready

        return _model_ready(df, copy=False)
    cohort = Cohort(df, schema=schema)
    if missing:
        raise ValidationError(
            [f"the model needs block(s) {', '.join(missing)} for these patients"],
            file=source,
            fix="pass each as NAME=FILE, e.g. --block " + " --block ".join(f"{n}=FILE" for n in missing),
        )
    images = bundle.manifest.get("image_blocks") or {}
    for name in needed:
        if name in images:  # a fusion modality of images: its pixel columns (pmed.fusion.images)
            from pmed.fusion.images import read_image_block

            table, prov = read_image_block(given[name], size=int(images[name]["size"]), id=schema.id)
            table = table.loc[table.index.isin(cohort.ids)]  # images of other patients: not these
            # a new patient without an image is predicted from its other modalities
            cohort.add_block(name, table, provenance=prov, allow_missing=True)
            continue
        table, prov = read_block(given[name], id=schema.id)
        cohort.add_block(name, table, provenance=prov)
    return cohort.features(["patients", *needed])


def predict_patients(
    model: str | Path | ModelBundle,
    patients: str | Path | pd.DataFrame,
    *,
    blocks: Mapping[str, str | Path] | None = None,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Predict for new patients with a bundle written by :func:`pmed.study.run_study`.

    Parameters
    ----------
    model
        Bundle folder (``DIR/model``) or a loaded :class:`ModelBundle`.
    patients
        Table of new patients (CSV/TSV/Parquet path or DataFrame) with the training columns.
    blocks
        Block name → file for modalities the model uses (e.g. ``{"genotypes": "g.vcf.gz"}``).
    out
        If given, the predictions are also written there (CSV, atomically).

    Returns
    -------
    pandas.DataFrame
        Indexed by patient ID. Binary: ``probability, predicted_class``; continuous:
        ``prediction``.
    """
    from pmed.io import check_not_input
    from pmed.io.tables import check_table_suffix

    if out is not None:  # before any work: f.xlsx would get CSV text under an Excel name
        check_table_suffix(out)
    # before any work: an --out equal to --patients (or a block file) would replace the input
    check_not_input(out, None if isinstance(patients, pd.DataFrame) else patients,
                    list((blocks or {}).values()), None if isinstance(model, ModelBundle) else model)
    bundle = model if isinstance(model, ModelBundle) else load_bundle(model)
    X = new_patient_features(bundle, patients, blocks=blocks)
    pred = bundle.predict(X, source=None if isinstance(patients, pd.DataFrame) else str(patients))
    if out is not None:
        write_table(pred, out)
    return pred


def read_pgx_recommendations(path: str | Path) -> pd.DataFrame:
    """The recommendations of ``pmed pgx call``: its output folder or its ``recommendations.tsv``.

    Raises
    ------
    InputError
        Neither a folder holding ``recommendations.tsv`` nor such a file.
    """
    from pmed.errors import InputError

    path = Path(path)
    file = path / "recommendations.tsv" if path.is_dir() else path
    if not file.is_file():
        raise InputError("no recommendations.tsv here", file=path,
                         fix="give the output folder of 'pmed pgx call' (or its recommendations.tsv) to --pgx")
    try:  # pmed pgx call writes it (tab-separated, UTF-8); IDs stay text
        recs = pd.read_csv(file, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise InputError(f"cannot read the recommendations table: {shorten(str(e), 120)}", file=file,
                         fix="give the output folder of 'pmed pgx call' to --pgx") from None
    missing = [c for c in ("sample", "drug", "source", "recommendation") if c not in recs.columns]
    if missing:
        raise InputError(f"not a recommendations table of 'pmed pgx call': no column(s) {', '.join(missing)}",
                         file=file, fix="give the output folder of 'pmed pgx call' to --pgx")
    return recs


def treatment_options(bundle: ModelBundle, X: pd.DataFrame, *,
                      recommendations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every patient's treatment options, ranked, with the pharmacogenomic guidance beside them.

    Parameters
    ----------
    bundle
        A bundle of a study with a treatment section (``bundle.treatment_model``).
    X
        The patients' features (:func:`new_patient_features`).
    recommendations
        ``pmed pgx call``'s recommendations for these patients (:func:`read_pgx_recommendations`),
        or ``None``: ``pgx_flag`` then says "no PGx calls".

    Returns
    -------
    pandas.DataFrame
        ``treatment_options.csv``: one row per patient and treatment, best first —
        ``patient_id, treatment, outcome, outcome_low, outcome_high`` (the expected outcome under
        the treatment, a probability for a 0/1 target), ``effect, effect_low, effect_high``
        (against the control), ``prob_best``, ``rank`` (the model's), ``pgx_flag`` and
        ``pgx_guidance`` (CPIC/DPWG for the treatment as a drug: shown beside the rank, which
        they never change; see :mod:`pmed.genomics.pgx.flags`).

    Raises
    ------
    OptionError
        The bundle has no treatment model.
    """
    from pmed.genomics.pgx.flags import pgx_flags

    tm, info = bundle.treatment_model, bundle.manifest.get("treatment")
    if tm is None or not info:
        raise OptionError("this model bundle has no treatment model (its study has no treatment: section)",
                          fix="train a study with a treatment: section to get treatment options")
    # the model's own columns checked against the training schema (as for the prediction); the
    # options model reads its covariates as new_patient_features gives them, as in training
    bundle.check_features(X)
    opts = tm.options(X, higher_is_better=info["higher_is_better"])
    flags = pgx_flags(recommendations, X.index, info["arms"])
    out = opts.merge(flags, on=["patient_id", "treatment"], how="left", validate="one_to_one")
    return out


def treatment_options_section(options: pd.DataFrame, patient, manifest: Mapping) -> str:
    """The "Treatment options" section of one patient's report (an HTML fragment), in plain words."""
    from pmed.report.html import _env

    info = manifest["treatment"]
    rows = options[options["patient_id"] == patient].to_dict("records")
    return _env().get_template("_treatment_options.html.j2").render(rows=rows, info=info,
                                                                   level=int(round(100 * info["level"])))


def explain_patient(bundle: ModelBundle, x: pd.DataFrame, *, top: int = 5) -> pd.DataFrame:
    """Which of one patient's features moved the prediction, and by how much.

    For each input feature the patient's value is replaced by the training cohort's typical
    value (median, or most frequent category) and the prediction recomputed; the difference
    is the feature's contribution: "had this factor been typical, the probability would be
    lower by 0.21". Model-agnostic and exact for the model at hand, though (unlike SHAP) it
    does not split interactions between features.

    Parameters
    ----------
    bundle
        The fitted model bundle.
    x
        One row of the model's feature table (see :func:`new_patient_features`).
    top
        How many factors to return, largest absolute contribution first.

    Returns
    -------
    pandas.DataFrame
        ``feature, value, typical_value, contribution`` (on the probability scale for binary
        targets, the risk score for survival, the outcome's scale otherwise).
    """
    if len(x) != 1:
        raise OptionError("explain_patient takes exactly one patient row")
    _, factors = predict_and_explain(bundle, x, top=top)
    return factors[0]


def predict_and_explain(
    bundle: ModelBundle, X: pd.DataFrame, *, top: int = 5, source: str | None = None
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """``bundle.predict(X)`` and each row's what-if factors (:func:`explain_patient`), in one call
    of the model.

    The patients and all their what-if variants (one per feature that is not already typical)
    go through the model's pipeline together: a pipeline costs about the same for one row as
    for a hundred, so a service answering one patient at a time pays for it once, not twice.

    Returns
    -------
    (pandas.DataFrame, list of pandas.DataFrame)
        The predictions (as :meth:`ModelBundle.predict`) and, per row of ``X`` in order, its
        factors as :func:`explain_patient` gives them.
    """
    Xc = bundle.check_features(X, source=source)
    ref = bundle.manifest["reference_values"]
    col = _VALUE_COLUMN.get(bundle.task, "prediction")
    n = len(Xc)
    # the variant k is row which_row[k] with column which_col[k] set to its typical value;
    # built column by column on arrays (pandas' per-cell assignment costs more than the model)
    which_row, which_col, columns = [], [], {}
    for j, c in enumerate(Xc.columns):
        s = Xc[c]
        r = ref.get(c)
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy()
            at = s.cat.categories.get_indexer([r]) if r is not None else np.array([-1])
            typical = codes == at[0] if r is not None and at[0] >= 0 else (
                np.zeros(n, dtype=bool) if r is None else
                np.array([not pd.isna(v) and str(v) == str(r) for v in s.astype("object")], dtype=bool))
            columns[c] = (codes, int(at[0]), s.dtype)
        else:
            values = s.to_numpy()
            if r is None:
                typical = np.ones(n, dtype=bool)
            elif isinstance(r, int | float) and not isinstance(r, bool) and values.dtype.kind in "fiu":
                v = values.astype(float)
                typical = ~np.isnan(v) & np.isclose(v, float(r))
            else:  # a missing value is not typical: the model imputes it, possibly with an indicator
                typical = np.array([not pd.isna(v) and str(v) == str(r) for v in values], dtype=bool)
            columns[c] = (values, None, None)
        if r is None:
            continue
        for i in np.flatnonzero(~typical):
            which_row.append(int(i))
            which_col.append(j)
    take = np.concatenate([np.arange(n), np.asarray(which_row, dtype=int)])
    changed = np.concatenate([np.full(n, -1), np.asarray(which_col, dtype=int)])
    data = {}
    for j, c in enumerate(Xc.columns):
        values, code, dtype = columns[c]
        v = values[take]
        hit = changed == j
        if dtype is not None:  # categorical, by codes
            if hit.any():
                v[hit] = code
            data[c] = pd.Categorical.from_codes(v, dtype=dtype)
        else:
            if hit.any():
                r = ref[c]
                v = v.astype(float) if v.dtype.kind in "iub" else v.copy() if v is values else v
                v[hit] = float(r) if v.dtype.kind == "f" else r
            data[c] = v
    both = pd.DataFrame(data, index=Xc.index.take(take), copy=False)
    both = bundle._predict_checked(both)
    pred = both.iloc[:n]
    base = pred[col].to_numpy(dtype=float)
    alt = both[col].to_numpy(dtype=float)[n:]
    which_row_a, which_col_a = np.asarray(which_row, dtype=int), np.asarray(which_col, dtype=int)
    names = np.asarray(Xc.columns, dtype=object)
    out = []
    for i in range(n):
        ks = np.flatnonzero(which_row_a == i)
        contrib = base[i] - alt[ks]
        ks = ks[np.argsort(-np.abs(contrib), kind="mergesort")][:top]
        feats = names[which_col_a[ks]]
        out.append(pd.DataFrame({
            "feature": list(feats),
            "value": [Xc.iat[i, j] for j in which_col_a[ks]],
            "typical_value": [ref[f] for f in feats],
            "contribution": base[i] - alt[ks],
        }))
    return pred, out


def _factor_sentence(row: pd.Series, task: str) -> str:
    c = float(row["contribution"])
    head = f"{row['feature']} = {_show(row['value'])} (typical {_show(row['typical_value'])})"
    if task == "binary" and abs(c) < 0.005:
        return f"{head} changes the predicted probability by less than 1 percentage point"
    verb = "raises" if c > 0 else "lowers"
    amount = f"{abs(c) * 100:.0f} percentage points" if task == "binary" else f"{abs(c):.3g}"
    what = {"binary": "the predicted probability", "survival": "the risk score"}.get(task, "the prediction")
    return f"{head} {verb} {what} by {amount}"


def _show(v) -> str:
    if isinstance(v, float):
        return "missing" if np.isnan(v) else f"{v:g}"
    return str(v)


def write_patient_reports(
    bundle: ModelBundle,
    X: pd.DataFrame,
    predictions: pd.DataFrame,
    out_dir: str | Path,
    *,
    top: int = 5,
    sections: Mapping[str, Sequence[str]] | None = None,
    pdf: bool = False,
    inputs: Sequence[str | Path] = (),
) -> list[Path]:
    """One self-contained HTML report per patient: prediction with its conformal set or
    interval, position in the training population, and the factors behind it.

    ``sections`` maps a patient ID to extra HTML fragments for its report (for example its
    pharmacogenomic calls and recommendations). ``pdf`` also prints each report to PDF
    (Chromium).

    Factors are the model-agnostic what-if contributions of :func:`explain_patient`, which need
    only the bundle's typical values, not training data.

    The folder is written whole: the reports are staged and replace ``out_dir`` at the end, so a
    re-run leaves no report of a patient no longer in the file and a failed run leaves the
    earlier reports. ``out_dir`` must be absent, empty or an earlier report folder (see
    :func:`check_report_folder`, which also refuses ``inputs`` lying inside it).
    """
    from pmed.io import output_folder

    final = Path(out_dir)
    check_report_folder(final, bundle.path, *inputs)
    with output_folder(final, owned=is_report_folder, what="patient report folder") as work:
        paths = _write_reports(bundle, X, predictions, work, top=top, sections=sections, pdf=pdf)
    return [final / p.relative_to(work) for p in paths]


def is_report_folder(folder: Path) -> bool:
    """Whether ``folder`` holds earlier patient reports (its ``index.csv`` says so)."""
    try:
        with open(folder / "index.csv", encoding="utf-8") as fh:
            if fh.readline().strip() == _INDEX_HEADER:
                return True
    except (OSError, UnicodeDecodeError):
        pass
    return False


def check_report_folder(report: str | Path, *inputs: str | Path | None, out: str | Path | None = None) -> Path:
    """Refuse a report folder that the reports cannot replace whole without loss, before any work.

    Parameters
    ----------
    report
        The folder (``--report``).
    *inputs
        The model bundle, the patient table and block files: none may lie inside the folder
        (the swap would delete it), and the folder may not lie inside one of them (an extra file
        in a bundle makes it unloadable).
    out
        The predictions file written by the same command (``--out``), which may not lie inside
        the folder either.

    Raises
    ------
    InputError
        (exit 2) naming what is wrong.
    """
    from pmed.errors import InputError

    report = Path(report)
    root = report.resolve()
    fix = "choose another folder for --report"
    if report.exists() and not report.is_dir():
        raise InputError("the report path is a file, not a folder", file=report, fix="give a folder for --report")
    for src in (Path(i) for i in inputs if i is not None):
        s = src.resolve()
        if src.is_dir() and (root == s or s in root.parents):
            raise InputError(f"the report folder lies inside the input {src.name!r}; writing there would "
                             "change it", file=report, fix=fix)
        if s == root or root in s.parents:
            raise InputError(f"the input {src.name!r} lies inside the report folder, which pmed replaces "
                             "whole", file=report, fix=fix)
    if out is not None and root in Path(out).resolve().parents:
        raise InputError("the predictions file (--out) lies inside the report folder, which pmed replaces "
                         "whole", file=report, fix=fix)
    if report.is_dir() and any(report.iterdir()) and not is_report_folder(report):
        raise InputError("the report folder is not empty and holds no earlier patient reports (index.csv); "
                         "pmed replaces it whole", file=report, fix="choose a new or empty folder for --report")
    return report


def _write_reports(bundle: ModelBundle, X: pd.DataFrame, predictions: pd.DataFrame, out: Path, *,
                   top: int, sections: Mapping[str, Sequence[str]] | None, pdf: bool) -> list[Path]:
    """Write the reports into the (staging) folder ``out``; see :func:`write_patient_reports`."""
    if bundle.task == "survival":
        return _write_survival_reports(bundle, X, predictions, out, top=top, sections=sections, pdf=pdf)
    from pmed import plots
    from pmed.io import check_inside, safe_filename
    from pmed.plots.study import population_position
    from pmed.report import patient_report
    # file names come from patient IDs, which are data: safe_filename keeps plain IDs as they are
    # and turns '../x', 'a/b', 'CON', 300 characters… into distinct names inside `out`; index.csv
    # maps each report back to its patient (the ID itself is inside the report)
    used: set[str] = set()
    index = []
    task = bundle.task
    col = "probability" if task == "binary" else "prediction"
    conformal = bundle.manifest.get("conformal") or {}
    paths = []
    reference = _reference_row(bundle, X)
    for pid in predictions.index:
        value = float(predictions.loc[pid, col])
        factors = explain_patient(bundle, X.loc[[pid]], top=top)
        name = safe_filename(pid, used=used)
        sentences, waterfall_png = _shap_for_patient(bundle, X.loc[[pid]], reference, out, top=top,
                                                     name=name)
        info = {
            "id": pid,
            "model": bundle.manifest.get("model", {}).get("name"),
            "outcome": (f"Probability that {bundle.manifest['target']} = 1" if task == "binary"
                        else f"Predicted {bundle.manifest['target']}"),
            "prediction": value,
            "percentile": bundle.percentile(value),
            "factors": sentences or [_factor_sentence(r, task) for _, r in factors.iterrows()],
            "factor_table": factors.to_dict("records"),
            "sections": list((sections or {}).get(pid, [])),
        }
        if task == "binary" and "prediction_set" in predictions:
            s = predictions.loc[pid, "prediction_set"]
            info["prediction_set"] = {"labels": s.split("|") if s else ["(empty)"],
                                      "level": conformal.get("confidence_level"), "method": conformal.get("method")}
        elif "interval_low" in predictions:
            info["interval"] = {"low": float(predictions.loc[pid, "interval_low"]),
                                "high": float(predictions.loc[pid, "interval_high"]),
                                "level": conformal.get("confidence_level"), "method": conformal.get("method")}
        if "modalities_used" in predictions and conformal.get("without"):
            info["modalities"] = _modality_widths(bundle, predictions.loc[pid, "modalities_used"])
        fig = population_position(bundle.manifest.get("population_predictions") or [], value,
                                  xlabel=col)
        png = plots.save(fig, check_inside(out / f".{name}.population.png", out))
        figures = {"population": png}
        if waterfall_png is not None:
            figures["waterfall"] = waterfall_png
        paths.append(patient_report(info, check_inside(out / f"{name}.html", out), figures=figures))
        index.append({"patient_id": pid, "report": f"{name}.html"})
        for f in figures.values():
            f.unlink()
        if pdf:
            from pmed.report import html_to_pdf

            html_to_pdf(paths[-1], paths[-1].with_suffix(".pdf"))
    # always written, even for no patient: it is how a later run recognises the folder as reports
    write_table(pd.DataFrame(index, columns=_INDEX_HEADER.split(",")), out / "index.csv", index=False)
    return paths


def _modality_widths(bundle: ModelBundle, used: str) -> dict:
    """What a fused model's patient report says of the modalities: which were used, and how the
    interval (continuous) or the prediction set's threshold (binary) widens without each."""
    c = bundle.manifest["conformal"]
    names = list(c.get("modalities") or c["without"])
    have = set(used.split("+")) if isinstance(used, str) and used else set()
    this = float(bundle.conformal_quantiles([used])[0])
    rows = [{"modality": m, "present": m in have, "quantile": c["without"].get(m)} for m in names]
    return {"used": [m for m in names if m in have], "missing": [m for m in names if m not in have],
            "quantile_full": float(c["quantile"]), "quantile": this, "rows": rows,
            "task": bundle.task, "level": c.get("confidence_level")}


def _reference_row(bundle: ModelBundle, X: pd.DataFrame) -> pd.DataFrame:
    """The training cohort's typical patient (medians, most frequent levels) as one row.

    SHAP values against this single reference need no training data in the bundle (nothing
    patient-level is stored), and they split the difference from the typical patient's
    prediction among the features, interactions included.
    """
    ref = bundle.manifest.get("reference_values", {})
    row = X.iloc[[0]].copy()
    for c in X.columns:
        v = ref.get(c)
        if isinstance(row[c].dtype, pd.CategoricalDtype):
            row[c] = pd.Categorical([v], categories=row[c].cat.categories)
        else:
            row[c] = np.nan if v is None else float(v)
    return row.set_axis(["typical patient"])


def _shap_for_patient(bundle: ModelBundle, x: pd.DataFrame, reference: pd.DataFrame, out: Path, *,
                      top: int, name: str | None = None, horizon: float | None = None,
                      time_unit: str | None = None) -> tuple[list[str], Path | None]:
    """Plain-language SHAP factors and a waterfall PNG, or nothing if the model can't be explained.

    Survival bundles pass ``horizon`` (and its ``time_unit``): the values are then on the chance
    of the event by the horizon, ``1 − S(horizon | x)`` (:func:`pmed.explain.explain`).
    """
    import warnings

    from pmed import plots
    from pmed.explain import explain, top_factors
    from pmed.models.importance import fitted_pipeline
    from pmed.plots.explain import waterfall

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expl = explain(fitted_pipeline(bundle.pipeline), x, background=reference, horizon=horizon,
                           time_unit=time_unit)
            sentences = top_factors(expl, x.index[0], n=top, units=bundle.input_schema())
            png = plots.save(waterfall(expl, x.index[0], max_display=top + 1), out / f".{name or 'patient'}.waterfall.png")
    except Exception as e:  # noqa: BLE001 - explanations are an aid: the report is still written
        warnings.warn(f"no explanation in the patient report: {type(e).__name__}: {e}"[:300],
                      PmedWarning, stacklevel=2)
        return [], None
    return sentences, png


def _hazard_ratio_sentences(bundle: ModelBundle, x: pd.DataFrame, *, top: int) -> list[str]:
    """Cox bundles: the patient's largest hazard ratios against the training cohort's average.

    For each column of the model (after its preprocessing: dummies of categories, missingness
    indicators) the patient's hazard relative to the cohort's average patient is
    ``exp(β·(x − mean))``; the product over the columns is the patient's relative hazard.
    """
    from pmed.survival.models import CoxPH, _final, _transform, cox_coefficients

    est = _final(bundle.pipeline)
    if not isinstance(est, CoxPH):
        return []
    coefs = cox_coefficients(bundle.pipeline)
    z = np.asarray(_transform(bundle.pipeline, x), dtype=np.float64)[0]
    log_hr = coefs["coef"].to_numpy() * (z - est.center_)
    order = np.argsort(-np.abs(log_hr), kind="mergesort")[:top]
    out = []
    for j in order:
        r = coefs.iloc[j]
        out.append(f"{r['feature']} = {_show(float(z[j]))} (cohort average {_show(float(est.center_[j]))}): "
                   f"hazard × {np.exp(log_hr[j]):.2f} (hazard ratio {r['hazard_ratio']:.3g} per unit, "
                   f"95 % CI {r['ci_low']:.3g}–{r['ci_high']:.3g})")
    return out


def _write_survival_reports(bundle: ModelBundle, X: pd.DataFrame, predictions: pd.DataFrame, out: Path, *,
                            top: int, sections: Mapping[str, Sequence[str]] | None, pdf: bool) -> list[Path]:
    """Survival bundles' reports into the (staging) folder ``out``: per patient the chance of the
    event within each horizon in words with its interval, the median time, the predicted curve
    against the cohort's Kaplan–Meier curve, and the factors: Shapley values on the chance of the
    event within the last horizon against the training cohort's typical patient, with a
    waterfall figure (every model but ``km``, whose prediction is the same for everyone), hazard
    ratios for cox, and the what-if contributions of :func:`explain_patient`."""
    from pmed import plots
    from pmed.io import check_inside, safe_filename
    from pmed.models.importance import fitted_pipeline
    from pmed.report.survival import (
        event_sentence,
        horizon_text,
        median_sentence,
        survival_curve_plot,
        survival_patient_report,
    )
    from pmed.study.survival import surv_name
    from pmed.survival.models import KaplanMeier, _final, predict_survival

    sv = bundle.manifest["survival"]
    hs, unit = [float(h) for h in sv["horizons"]], sv.get("time_unit", "days")
    # Shapley values at the last horizon; the Kaplan–Meier null model predicts the same curve
    # for everyone, so it has nothing to explain
    explain_at = None if isinstance(_final(fitted_pipeline(bundle.pipeline)), KaplanMeier) else hs[-1]
    reference = _reference_row(bundle, X) if explain_at is not None else None
    words = horizon_text(hs[-1], unit)
    exact = f"{hs[-1]:g} {unit}"
    shap_scale = ("Shapley values on the chance of the event within "
                  + (words if words == exact else f"{words} ({exact})")
                  + ", from the training cohort's typical patient to this patient")
    terms = sv.get("intervals")
    km = sv.get("km") or {}
    grid = np.linspace(0.0, float(sv["max_follow_up"]), 200)
    used: set[str] = set()
    index, paths = [], []
    for pid in predictions.index:
        row = predictions.loc[pid]
        x = X.loc[[pid]]
        name = safe_filename(pid, used=used)
        low = [float(row[f"{surv_name(h)}_low"]) for h in hs] if terms else []
        high = [float(row[f"{surv_name(h)}_high"]) for h in hs] if terms else []
        sentences = [event_sentence(h, float(row[surv_name(h)]), low[i] if terms else None,
                                    high[i] if terms else None, unit=unit,
                                    event=f"the event ({sv.get('event', 'event')})")
                     for i, h in enumerate(hs)]
        curve = predict_survival(bundle.pipeline, x, grid)[0]
        fig = survival_curve_plot(grid, curve, km_time=km.get("time", []), km_surv=km.get("surv", []),
                                  horizons=hs, low=low, high=high, unit=unit)
        png = plots.save(fig, check_inside(out / f".{name}.curve.png", out))
        factors = explain_patient(bundle, x, top=top)
        shap_sentences, waterfall_png = ([], None) if explain_at is None else _shap_for_patient(
            bundle, x, reference, out, top=top, name=name, horizon=explain_at, time_unit=unit)
        figures = {"curve": png}
        if waterfall_png is not None:
            figures["waterfall"] = waterfall_png
        info = {
            "id": pid,
            "model": bundle.manifest.get("model", {}).get("name"),
            "outcome": "Predicted chance of the event, from the model's survival curve (1 − S(t))",
            "sentences": sentences,
            "median": median_sentence(float(row["median_survival"]), unit=unit, follow_up=sv["max_follow_up"]),
            "interval_method": terms.get("method") if terms else None,
            "percentile": bundle.percentile(float(row["risk"])),
            "hazard_ratios": _hazard_ratio_sentences(bundle, x, top=top),
            "shap_scale": shap_scale if shap_sentences else None,
            "factors": shap_sentences or [_factor_sentence(r, "survival") for _, r in factors.iterrows()],
            "factor_table": factors.to_dict("records"),
            "sections": list((sections or {}).get(pid, [])),
        }
        paths.append(survival_patient_report(info, check_inside(out / f"{name}.html", out), figures=figures))
        for f in figures.values():
            f.unlink()
        index.append({"patient_id": pid, "report": f"{name}.html"})
        if pdf:
            from pmed.report import html_to_pdf

            html_to_pdf(paths[-1], paths[-1].with_suffix(".pdf"))
    write_table(pd.DataFrame(index, columns=_INDEX_HEADER.split(",")), out / "index.csv", index=False)
    return paths
