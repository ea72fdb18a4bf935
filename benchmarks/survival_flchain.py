"""Speed of pmed's survival study against the libraries it wraps, on ``flchain`` (issue #17).

The data are scikit-survival's bundled ``flchain`` (:func:`sksurv.datasets.load_flchain`; the
serum free light chain cohort of R's ``survival::flchain``, 7,874 patients, 2,169 deaths).
Prepared once, the same for every tool:

* ``chapter`` (the chapter of the cause of death, known only for patients who died) is dropped:
  it is the outcome in disguise;
* the three follow-up times of 0 days become 0.5 day, as R users do with ``flchain`` (a Cox
  model is indifferent; pmed refuses times ≤ 0);
* ``flc.grp`` and ``sample.yr`` are kept as numbers (ordinal decile group, calendar year), sex
  and ``mgus`` as two-level categories; ``creatinine`` (1,350 missing) is imputed inside each
  training fold (median plus a missingness indicator), as the study pipeline does.

Measured in one run, on the same five folds (pmed's, stratified by the event; read back from its
``oof_predictions.csv``), with horizons 365, 1825 and 3650 days:

* **pmed** — ``pmed.study.run_study`` on a study YAML written to ``OUT/study``: models ``cox``,
  ``coxnet``, ``rsf`` (``n_jobs: 2``), ``gbsa``, a small bootstrap so that the time is the
  fitting. Wall time of the whole study, and per family the cross-validation (5 fits +
  predictions of risk and survival at the horizons) and the evaluation, from the timestamps of a
  progress reporter;
* **scikit-survival directly** — ``CoxPHSurvivalAnalysis`` (Efron ties),
  ``CoxnetSurvivalAnalysis``, ``RandomSurvivalForest`` (the full survival curve, scikit-survival's
  default ``low_memory=False``; pmed keeps only the leaves' curves and predicts only the horizons),
  ``GradientBoostingSurvivalAnalysis``, with pmed's hyperparameters and the same scikit-learn
  preprocessing, predicting risk and survival at the horizons (``predict_survival_function``);
  also lifelines' ``CoxPHFitter`` (what pmed's ``cox`` fits with, at pmed's tolerance);
* **R** ``survival::coxph`` on the same folds (``benchmarks/R/survival_flchain.R``; ``Rscript``).

Harrell's C of the pooled out-of-fold risks is reported beside every time
(``sksurv.metrics.concordance_index_censored`` for all; R's own ``concordance`` and pmed's
``metrics.json`` as well), so that no speed is bought with accuracy. Raw numbers go to
``OUT/results.json``, the page to ``docs/results/survival_flchain.md``.

Run from the repository root (not in CI)::

    .venv/bin/python benchmarks/survival_flchain.py                  # 100 trees per forest
    .venv/bin/python benchmarks/survival_flchain.py --rsf-trees 30   # shorter
    .venv/bin/python benchmarks/survival_flchain.py --render-only    # page from results.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.io import write_text_atomic
from pmed.io.jsonio import to_json

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment  # noqa: E402

__all__ = ["flchain_table", "main", "render", "run_pmed", "run_r", "run_sksurv"]

REPO = Path(__file__).resolve().parents[1]
NAME = "survival_flchain"
DOC = REPO / "docs" / "results" / f"{NAME}.md"
R_SCRIPT = REPO / "benchmarks" / "R" / f"{NAME}.R"
HORIZONS = (365.0, 1825.0, 3650.0)
FAMILIES = ("cox", "coxnet", "rsf", "gbsa")
FEATURES = ["age", "creatinine", "flc_grp", "kappa", "lambda", "mgus", "sample_yr", "sex"]
ZERO_TIME = 0.5  # days, for the three follow-up times of 0


def flchain_table() -> tuple[pd.DataFrame, dict[str, int]]:
    """The patient table every tool reads: ``patient_id``, the features, ``futime``, ``death``."""
    from sksurv.datasets import load_flchain

    X, y = load_flchain()
    df = pd.DataFrame({
        "patient_id": [f"p{i:05d}" for i in range(len(X))],
        "age": X["age"].astype(float),
        "creatinine": X["creatinine"].astype(float),
        "flc_grp": X["flc.grp"].astype(int),
        "kappa": X["kappa"].astype(float),
        "lambda": X["lambda"].astype(float),
        "mgus": X["mgus"].astype(str),
        "sample_yr": X["sample.yr"].astype(int),
        "sex": X["sex"].astype(str),
        "futime": y["futime"].astype(float),
        "death": y["death"].astype(int),
    })
    zero = int((df["futime"] == 0).sum())
    df.loc[df["futime"] == 0, "futime"] = ZERO_TIME
    info = {"n": len(df), "events": int(df["death"].sum()), "zero_times": zero,
            "creatinine_missing": int(df["creatinine"].isna().sum()),
            "chapter_missing": int(X["chapter"].isna().sum())}
    return df, info


class _Clock:
    """A progress reporter that timestamps each step of :func:`pmed.study.run_study`."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    def start(self, total: int | None, description: str = "") -> None:
        self.events.append((time.perf_counter(), f"start {description}".strip()))

    def advance(self, description: str | None = None, n: int = 1) -> None:
        self.events.append((time.perf_counter(), description or ""))


def _phases(events: list[tuple[float, str]], t_begin: float, t_end: float) -> dict[str, float]:
    """Seconds per phase: ``cv:<model>``, ``eval:<model>``, ``load`` (until the first start) and
    ``final`` (refit, importance, bundle, outputs), from the reporter's timestamps."""
    out: dict[str, float] = {}
    prev = t_begin
    for i, (t, what) in enumerate(events):
        if i == 0:
            key = "load"
        elif what.startswith("cross-validating "):
            key = "cv:" + what.removeprefix("cross-validating ")
        elif what.startswith("evaluated "):
            key = "eval:" + what.removeprefix("evaluated ")
        else:
            key = "final"
        out[key] = out.get(key, 0.0) + (t - prev)
        prev = t
    out["final"] = out.get("final", 0.0) + (t_end - prev)
    return out


def _harrell(time_: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    from sksurv.metrics import concordance_index_censored

    return float(concordance_index_censored(event.astype(bool), time_, risk)[0])


def _write_study(folder: Path, families: tuple[str, ...], *, folds: int, bootstrap: int, rsf_trees: int,
                 gbsa_trees: int, n_jobs: int) -> Path:
    params = {"rsf": f"{{n_estimators: {rsf_trees}, n_jobs: {n_jobs}}}", "gbsa": f"{{n_estimators: {gbsa_trees}}}"}
    models = "\n".join(f"  - {{family: {f}" + (f", params: {params[f]}" if f in params else "") + "}"
                       for f in families)
    hs = ", ".join(f"{h:g}" for h in HORIZONS)
    path = folder / f"study_{'_'.join(families)}.yaml"
    path.write_text(
        "name: flchain\n"
        "data: {patients: patients.csv}\n"
        f"target: {{task: survival, time: futime, event: death, horizons: [{hs}], time_unit: days}}\n"
        f"models:\n{models}\n"
        f"evaluation: {{folds: {folds}, repeats: 1, bootstrap: {bootstrap}}}\n"
        "seed: 0\n")
    return path


def _pmed_cv(family: str, study_path: Path) -> dict[str, Any]:
    """pmed's pipeline of ``family``, exactly as the study builds it, on each of the study's folds,
    outside the study: the folds it fits, their time, and Harrell's C when every fold fitted."""
    from pmed.errors import PmedError
    from pmed.models.zoo import make_model
    from pmed.study.run import load_cohort
    from pmed.study.spec import load_study
    from pmed.study.survival import _outcome, _splits, survival_predictions
    from pmed.survival.models import make_surv_y

    st = load_study(study_path)
    cohort = load_cohort(st)
    t, e, hs = _outcome(st, cohort, None)
    y = make_surv_y(t, e)
    X = cohort.features(st.features.blocks, include=st.features.include, exclude=st.features.exclude)
    splits, _ = _splits(st, t, e, None, hs)
    risk = np.full(len(t), np.nan)
    surv = np.full((len(t), len(hs)), np.nan)
    out: dict[str, Any] = {"refused_folds": [], "seconds": 0.0, "error": None}
    t0 = time.perf_counter()
    for _, f, tr, te in splits:
        try:
            est = make_model(family, task="survival", X=X, seed=st.seed).fit(X.iloc[tr], y[tr])
        except PmedError as err:
            out["refused_folds"].append(int(f))
            out["error"] = str(err.message).splitlines()[0]
            continue
        pred = survival_predictions(est, X.iloc[te], hs)
        risk[te] = pred["risk"].to_numpy()
        surv[te] = pred.drop(columns="risk").to_numpy()
    out["seconds"] = time.perf_counter() - t0
    if not out["refused_folds"]:
        out["harrell_c"] = _harrell(t, e, risk)
        out["surv_mean"] = {f"{h:g}": float(surv[:, j].mean()) for j, h in enumerate(hs)}
    return out


def run_pmed(df: pd.DataFrame, folder: Path, *, folds: int, bootstrap: int, rsf_trees: int,
             gbsa_trees: int, n_jobs: int) -> dict[str, Any]:
    """Run the pmed study; returns times, Harrell's C per model and the folds it used.

    The study has the four families; should it stop on one of them (before pmed retried a Cox
    fit's overshooting first Newton step, ``cox`` refused three flchain folds and the calibration
    of ``coxnet``'s predictions crashed), the stop is recorded with its time and message, the
    study is run again without that family, and the family's pipeline is cross-validated on the
    same folds outside the study."""
    from pmed.study import run_study

    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "patients.csv", index=False)
    families = FAMILIES
    attempts = []
    while True:
        path = _write_study(folder, families, folds=folds, bootstrap=bootstrap, rsf_trees=rsf_trees,
                            gbsa_trees=gbsa_trees, n_jobs=n_jobs)
        out = folder.parent / "pmed_out"
        clock = _Clock()
        t0 = time.perf_counter()
        try:
            result = run_study(path, out, progress=clock)
        except Exception as err:  # noqa: BLE001 - recorded with its type: a crash is a finding too
            sec = time.perf_counter() - t0
            done = {d.removeprefix("evaluated ") for _, d in clock.events if d.startswith("evaluated ")}
            failed = next((f for f in families if f not in done), None)
            msg = str(getattr(err, "message", err)).splitlines()[0][:200]
            attempts.append({"families": list(families), "seconds": sec, "failed": failed,
                             "error": f"{type(err).__module__}.{type(err).__name__}: {msg}"})
            print(f"  pmed stopped on {failed} after {sec:.1f} s: {attempts[-1]['error']}", file=sys.stderr,
                  flush=True)
            if failed is None or len(families) == 1:
                raise
            families = tuple(f for f in families if f != failed)
            continue
        t1 = time.perf_counter()
        break
    phases = _phases(clock.events, t0, t1)
    oof = pd.read_csv(out / "oof_predictions.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    per_model = {}
    for name, r in metrics["models"].items():
        o = oof[oof["model"] == name]
        per_model[name] = {
            "family": r["family"],
            "cv_seconds": phases.get(f"cv:{name}"),
            "eval_seconds": phases.get(f"eval:{name}"),
            "harrell_c_pmed": r["metrics"]["harrell_c"]["estimate"],
            "harrell_c": _harrell(o["time"].to_numpy(), o["event"].to_numpy(), o["risk"].to_numpy()),
            "surv_mean": {f"{h:g}": float(o[f"surv_{h:g}"].mean()) for h in HORIZONS},
        }
    outside = {f: _pmed_cv(f, path) for f in FAMILIES if f not in families}
    folds_of = oof[oof["model"] == next(iter(metrics["models"]))].set_index("patient_id")["fold"]
    return {"seconds": t1 - t0, "phases": phases, "models": per_model, "selected": result.selected,
            "families": list(families), "attempts": attempts, "outside_study": outside,
            "folds": folds_of, "n_features": metrics["n_features"]}


def _preprocessor(X: pd.DataFrame, *, scale: bool, drop_first: bool = False):
    """The scikit-learn preprocessing pmed's pipelines use, built directly: median imputation with
    a missingness indicator, standardised when ``scale``; one-hot for sex and mgus (without the
    first level for a Cox model, which has no intercept)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if c not in ("sex", "mgus")]
    num = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
    if scale:
        num.append(("scale", StandardScaler()))
    cat = OneHotEncoder(drop="first" if drop_first else None, handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer([("num", Pipeline(num), numeric), ("cat", cat, ["sex", "mgus"])])


def _sksurv_model(family: str, *, rsf_trees: int, gbsa_trees: int, n_jobs: int):
    """scikit-survival's estimator with the hyperparameters pmed's family passes to it."""
    from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
    from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis

    if family == "cox":
        return CoxPHSurvivalAnalysis(ties="efron")
    if family == "coxnet":
        return CoxnetSurvivalAnalysis(alphas=[0.02], l1_ratio=0.5, tol=1e-7, max_iter=100000,
                                      fit_baseline_model=True)
    if family == "rsf":
        return RandomSurvivalForest(n_estimators=rsf_trees, min_samples_leaf=10, min_samples_split=20,
                                    max_features="sqrt", random_state=0, n_jobs=n_jobs)
    return GradientBoostingSurvivalAnalysis(loss="coxph", n_estimators=gbsa_trees, learning_rate=0.1, max_depth=3,
                                            subsample=1.0, min_samples_leaf=5, random_state=0)


def run_sksurv(df: pd.DataFrame, folds: pd.Series, *, rsf_trees: int, gbsa_trees: int, n_jobs: int) -> dict[str, Any]:
    """The four families fitted with scikit-survival directly (and cox with lifelines) on pmed's folds."""
    import lifelines
    from sklearn.pipeline import make_pipeline

    fold = folds.reindex(df["patient_id"]).to_numpy()
    X = df[FEATURES]
    t, e = df["futime"].to_numpy(), df["death"].to_numpy().astype(bool)
    y = np.empty(len(df), dtype=[("event", bool), ("time", np.float64)])
    y["event"], y["time"] = e, t
    hs = np.asarray(HORIZONS)
    out: dict[str, Any] = {}
    for family in FAMILIES:
        risk = np.empty(len(df))
        surv = np.empty((len(df), len(hs)))
        t0 = time.perf_counter()
        for f in np.unique(fold):
            tr, te = fold != f, fold == f
            # scikit-survival's CoxPH does not standardise internally (lifelines does): on the raw
            # columns (sample_yr near 2000, kappa up to 100) its Newton steps overflow, so the
            # columns are standardised for it as for the other three; its C is scale-free
            pipe = make_pipeline(_preprocessor(X, scale=True, drop_first=family == "cox"),
                                 _sksurv_model(family, rsf_trees=rsf_trees, gbsa_trees=gbsa_trees, n_jobs=n_jobs))
            pipe.fit(X[tr], y[tr])
            risk[te] = pipe.predict(X[te])
            surv[te] = np.vstack([fn(hs) for fn in pipe.predict_survival_function(X[te])])
        sec = time.perf_counter() - t0
        out[family] = {"library": "scikit-survival", "cv_seconds": sec, "harrell_c": _harrell(t, e, risk),
                       "surv_mean": {f"{h:g}": float(surv[:, j].mean()) for j, h in enumerate(hs)}}
        print(f"  sksurv {family}: {sec:.1f} s, C {out[family]['harrell_c']:.4f}", file=sys.stderr, flush=True)

    # lifelines' CoxPHFitter, which pmed's cox wraps, at pmed's convergence settings: with its
    # default first Newton step (0.95), as pmed calls it, and with a shorter one (0.5)
    for key, step in (("cox_lifelines", 0.95), ("cox_lifelines_step05", 0.5)):
        risk = np.empty(len(df))
        surv = np.empty((len(df), len(hs)))
        failed = []
        t0 = time.perf_counter()
        for f in np.unique(fold):
            tr, te = fold != f, fold == f
            pre = _preprocessor(X, scale=False, drop_first=True)
            Ztr = pd.DataFrame(pre.fit_transform(X[tr]))
            Zte = pd.DataFrame(pre.transform(X[te]))
            Ztr.columns = Zte.columns = [f"c{j}" for j in range(Ztr.shape[1])]
            cph = lifelines.CoxPHFitter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cph.fit(Ztr.assign(T=t[tr], E=e[tr].astype(int)), "T", "E",
                        fit_options={"precision": 1e-12, "r_precision": 1e-14, "max_steps": 200,
                                     "step_size": step})
            if any("failed to converge" in str(w.message) for w in caught):
                failed.append(int(f))
            risk[te] = cph.predict_partial_hazard(Zte).to_numpy()
            surv[te] = cph.predict_survival_function(Zte, times=hs).to_numpy().T
        sec = time.perf_counter() - t0
        out[key] = {"library": "lifelines", "step_size": step, "cv_seconds": sec,
                    "harrell_c": _harrell(t, e, risk), "not_converged_folds": failed,
                    "surv_mean": {f"{h:g}": float(surv[:, j].mean()) for j, h in enumerate(hs)}}
        print(f"  lifelines cox (step {step}): {sec:.1f} s, C {out[key]['harrell_c']:.4f}, "
              f"not converged in folds {failed}", file=sys.stderr, flush=True)
    return out


def run_r(df: pd.DataFrame, folds: pd.Series, folder: Path, rscript: str) -> dict[str, Any] | None:
    """R's coxph on pmed's folds through ``benchmarks/R/survival_flchain.R``; None without Rscript."""
    exe = shutil.which(rscript) or (rscript if Path(rscript).exists() else None)
    if exe is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    data = df.assign(fold=folds.reindex(df["patient_id"]).to_numpy())
    data.to_csv(folder / "flchain_folds.csv", index=False, na_rep="NA")
    t0 = time.perf_counter()
    subprocess.run([exe, str(R_SCRIPT), str(folder / "flchain_folds.csv"), ",".join(f"{h:g}" for h in HORIZONS),
                    str(folder / "r")], check=True)
    wall = time.perf_counter() - t0
    timing = pd.read_csv(folder / "r_timing.csv").iloc[0]
    oof = pd.read_csv(folder / "r_oof.csv").set_index("patient_id").reindex(df["patient_id"])
    return {"cv_seconds": float(timing["elapsed_s"]), "process_seconds": wall,
            "harrell_c_r": float(timing["harrell_c"]),
            "harrell_c": _harrell(df["futime"].to_numpy(), df["death"].to_numpy(), oof["lp"].to_numpy()),
            "surv_mean": {f"{h:g}": float(oof[f"surv_{h:g}"].mean()) for h in HORIZONS},
            "r_version": str(timing["r_version"]), "survival_version": str(timing["survival_version"])}


# ---------------------------------------------------------------------------------- page
def _f(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def render(res: dict[str, Any]) -> str:
    """The results page from ``results.json``."""
    p, s, r = res["pmed"], res["sksurv"], res.get("r")
    cfg, data = res["settings"], res["data"]
    lines = [
        "# Survival on flchain: pmed vs scikit-survival vs R survival",
        "",
        "Written by `benchmarks/survival_flchain.py` (issue #17, point 7). Every number below was",
        "measured in the run this header describes.",
        "",
        results_header(res.get("environment")),
    ]
    if r:
        lines.append(f"- R: {r['r_version']}, survival {r['survival_version']}")
    lines += [
        f"- Whole script: {res['seconds']:.1f} s",
        "",
        "## Set-up",
        "",
        f"- Data: scikit-survival's `load_flchain()`, {data['n']:,} patients, {data['events']:,} deaths. "
        f"`chapter` (cause of death; missing for the {data['chapter_missing']:,} who did not die) is "
        f"dropped as outcome leakage. The {data['zero_times']} follow-up times of 0 days are set to "
        f"{ZERO_TIME:g} day, as R users do. Features: {', '.join(FEATURES)} "
        "(`flc_grp`, `sample_yr` as numbers; `sex`, `mgus` as categories; "
        f"{data['creatinine_missing']:,} missing `creatinine` imputed inside each training fold with the "
        "median plus a missingness indicator).",
        f"- {cfg['folds']} folds (pmed's, stratified by the event; the same folds for every tool), "
        f"horizons {', '.join(f'{h:g}' for h in HORIZONS)} days, `n_jobs={cfg['n_jobs']}` for the forests, "
        f"pmed's bootstrap {cfg['bootstrap']} resamples.",
        f"- Random survival forests: **{cfg['rsf_trees']} trees** (pmed's default is 100"
        + ("" if cfg["rsf_trees"] == 100 else "; fewer here to keep the run short") + "), "
        "min_samples_leaf 10, min_samples_split 20, max_features sqrt. pmed grows the forest with "
        "`low_memory=True` and keeps each leaf's Kaplan–Meier curve where it changes, predicting only "
        "the horizons; scikit-survival used directly keeps the full curve in every node "
        "(`low_memory=False`, its default) and `predict_survival_function` returns whole curves.",
        f"- Gradient boosting (gbsa): **{cfg.get('gbsa_trees', 100)} stages** (pmed's default is 100"
        + ("" if cfg.get("gbsa_trees", 100) == 100 else "; fewer here to keep the run short") + "), "
        "learning rate 0.1, max_depth 3, min_samples_leaf 5, loss coxph. coxnet: alpha 0.02, l1_ratio 0.5. "
        "cox: Efron ties everywhere; scikit-survival's CoxPH gets standardised columns (on the raw ones "
        "its Newton steps overflow: sample_yr is near 2000), lifelines and R the raw ones.",
        "- Times are wall-clock seconds of the 5 fits plus the predictions of risk and of survival at "
        "the horizons for the test folds, preprocessing included. pmed's per-family times come from "
        "the timestamps of its progress reporter inside one `run_study` call.",
        "",
        "## Results",
        "",
    ]
    for att in p.get("attempts", []):
        lines.append(f"- pmed study with {', '.join(att['families'])}: **stopped on `{att['failed']}`** after "
                     f"{att['seconds']:.1f} s — `{att['error']}`")
    if p.get("attempts"):
        lines += ["", "The study was rerun without the family it stopped on; those families' pmed pipelines "
                      "(`make_model(...)`, exactly as the study builds them) were then cross-validated on the "
                      "same folds outside the study (marked *outside*).", ""]
    lines += [
        f"pmed's study with {', '.join(p['families'])} (CV, evaluation with {cfg['bootstrap']} bootstrap "
        f"resamples, refit of the selected model `{p['selected']}`, permutation importance, bundle, "
        f"outputs): **{p['seconds']:.1f} s**; of which loading and checks {_f(p['phases'].get('load'), 1)} s, "
        f"refit/importance/outputs {_f(p['phases'].get('final'), 1)} s.",
        "",
        "| family | pmed CV s | library | library CV s | pmed / library | pmed eval s | "
        "Harrell's C pmed | Harrell's C library |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]

    def pmed_of(fam: str) -> tuple[str, float | None, str, str]:
        if fam in p["models"]:
            m = p["models"][fam]
            return f"{m['cv_seconds']:.2f}", m["cv_seconds"], f"{m['eval_seconds']:.2f}", f"{m['harrell_c']:.4f}"
        o = p.get("outside_study", {}).get(fam)
        if o is None:
            return "—", None, "—", "—"
        if o["refused_folds"]:
            return (f"refused folds {', '.join(str(f + 1) for f in o['refused_folds'])} ({o['seconds']:.2f} s)",
                    None, "—", "—")
        return f"{o['seconds']:.2f} *outside*", o["seconds"], "crashed", f"{o['harrell_c']:.4f}"

    def row(fam: str, lib_name: str, lib: dict[str, Any]) -> str:
        cell, sec, ev, c = pmed_of(fam)
        ratio = f"{sec / lib['cv_seconds']:.2f}" if sec is not None else "—"
        return (f"| {fam} | {cell} | {lib_name} | {lib['cv_seconds']:.2f} | {ratio} | {ev} | {c} | "
                f"{lib['harrell_c']:.4f} |")

    for fam in FAMILIES:
        lines.append(row(fam, "scikit-survival", s[fam]))
    for key in ("cox_lifelines", "cox_lifelines_step05"):
        ll = s[key]
        nc = (f", not converged in folds {', '.join(str(f + 1) for f in ll['not_converged_folds'])}"
              if ll["not_converged_folds"] else "")
        lines.append(row("cox", f"lifelines (first step {ll['step_size']:g}{nc})", ll))
    if r:
        lines.append(row("cox", "R survival `coxph`", r))
    fams = [f for f in FAMILIES if pmed_of(f)[1] is not None]
    sum_p = sum(pmed_of(f)[1] for f in fams)
    sum_l = sum(s[f]["cv_seconds"] for f in fams)
    lines += [
        f"| **{' + '.join(fams)}** | **{sum_p:.2f}** | scikit-survival | **{sum_l:.2f}** | "
        f"**{sum_p / sum_l:.2f}** | | | |",
        "",
        "Harrell's C is that of the pooled out-of-fold risks, computed for every tool with "
        "`sksurv.metrics.concordance_index_censored`. pmed's own `metrics.json` gives "
        + ", ".join(f"{k} {m['harrell_c_pmed']:.4f}" for k, m in p["models"].items())
        + (f"; R's `concordance(..., reverse = TRUE)` on its linear predictor gives {r['harrell_c_r']:.4f}"
           if r else "") + ".",
        "",
        "The one-hot columns come in a different order in pmed's pipeline (mgus, sex) and in the one "
        "built here (sex, mgus), so with the same seed the forests draw different feature subsets: "
        "their C differ for that reason, not only by the way they store the curves.",
        "",
        "Mean predicted survival at the horizons (a check that the tools predict the same thing):",
        "",
        "| model | " + " | ".join(f"S({h:g})" for h in HORIZONS) + " |",
        "|---|" + "---:|" * len(HORIZONS),
    ]
    rows = [(f"pmed {k}", m) for k, m in p["models"].items()]
    rows += [(f"pmed {k} (outside the study)", o) for k, o in p.get("outside_study", {}).items() if "surv_mean" in o]
    rows += [(f"scikit-survival {fam}", s[fam]) for fam in FAMILIES]
    rows += [(f"lifelines cox (first step {s[k]['step_size']:g})", s[k]) for k in ("cox_lifelines", "cox_lifelines_step05")]
    if r:
        rows.append(("R coxph", r))
    for label, m in rows:
        lines.append(f"| {label} | " + " | ".join(f"{m['surv_mean'][f'{h:g}']:.4f}" for h in HORIZONS) + " |")
    if r:
        lines += ["", f"R's times are measured inside R (`proc.time`, the fold loop only); the whole "
                      f"`Rscript` process, start-up and CSV reading included, took {r['process_seconds']:.2f} s."]
    else:
        lines += ["", "R was not run (no `Rscript`)."]
    lines += [
        "",
        "## Repeat",
        "",
        "```bash",
        res["environment"]["command"].replace("python ", ".venv/bin/python ", 1),
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=default_out(NAME), help=f"output folder (default out/{NAME})")
    ap.add_argument("--doc", type=Path, default=DOC, help="results page")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=20, help="pmed's bootstrap resamples (default 20)")
    ap.add_argument("--rsf-trees", type=int, default=100, help="trees per random survival forest (default 100)")
    ap.add_argument("--gbsa-trees", type=int, default=100, help="boosting stages of gbsa (default 100)")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes for the forests (default 2)")
    ap.add_argument("--rscript", default="Rscript", help="the Rscript executable (default: on PATH)")
    ap.add_argument("--render-only", action="store_true", help="rewrite the page from OUT/results.json")
    args = ap.parse_args(argv)
    results_path = args.out / "results.json"
    if args.render_only:
        write_text_atomic(args.doc, render(json.loads(results_path.read_text())))
        return 0

    env = run_environment(["scikit-survival", "lifelines"], argv)
    t0 = time.perf_counter()
    df, info = flchain_table()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"folds": args.folds, "bootstrap": args.bootstrap, "rsf_trees": args.rsf_trees,
                "gbsa_trees": args.gbsa_trees,
                "n_jobs": args.n_jobs, "horizons": list(HORIZONS)}
    with tempfile.TemporaryDirectory(prefix="flchain_") as tmp:
        print("pmed study ...", file=sys.stderr, flush=True)
        pm = run_pmed(df, Path(tmp) / "study", folds=args.folds, bootstrap=args.bootstrap,
                      rsf_trees=args.rsf_trees, gbsa_trees=args.gbsa_trees, n_jobs=args.n_jobs)
        print(f"  pmed: {pm['seconds']:.1f} s", file=sys.stderr, flush=True)
        folds = pm.pop("folds")
        print("scikit-survival ...", file=sys.stderr, flush=True)
        sk = run_sksurv(df, folds, rsf_trees=args.rsf_trees, gbsa_trees=args.gbsa_trees, n_jobs=args.n_jobs)
        print("R ...", file=sys.stderr, flush=True)
        rr = run_r(df, folds, args.out / "r", args.rscript)
    results = {"environment": env, "settings": settings, "data": info, "pmed": pm, "sksurv": sk, "r": rr,
               "seconds": time.perf_counter() - t0, "threads": os.environ.get("OMP_NUM_THREADS")}
    write_text_atomic(results_path, to_json(results))
    write_text_atomic(args.doc, render(results))
    print(f"wrote {args.doc} and {results_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
