"""Multimodal fusion on real data: breast_cancer (genes + clinical) and GDSC v17 (three modalities).

Issue #20, point 4b. Each dataset's study runs through :func:`pmed.study.run_study` twice, with
``fusion.method`` late then early, and the page (``docs/results/fusion_realdata.md``) shows, from
the numbers of this run only, each modality alone, the fused model, the fused model without each
modality, the paired differences (fused − best single modality, the gain of each modality), the
drop when a modality is masked for 30 % of the test patients, the availability and the run time.

- **breast_cancer** (scikit-survival's ``load_breast_cancer``, 198 patients, 76 gene-expression
  values and age, ER status, grade, tumour size; Desmedt et al. 2007). pmed's fusion takes binary
  and continuous targets only, so the target is distant metastasis within 5 years (1826 days):
  patients censored before then without metastasis are excluded. The study (written under
  ``OUT/breast_cancer/``) fuses ``genes`` (``X*``) and ``clinical`` (age, er, grade, size) with
  the ``linear`` family (L2 logistic regression), selected by AUROC, 5 folds, seed 0.
- **GDSC v17** Nutlin-3a ln(IC50), ``examples/gdsc_nutlin_fusion.yaml``: mutations, copy number,
  tissue + MSI, ``linear`` family (ridge), selected by R², 5 folds, seed 0.

Both studies keep one plain ``linear`` model over all the features as a candidate, so the fused
model competes with it. The benchmark turns off what it does not read (the HTML report and the
linear coefficients' bootstrap), which changes none of the numbers shown.

Run from the repository root (no network; GDSC needs ``../shared`` or ``$PMED_SHARED``)::

    .venv/bin/python benchmarks/fusion_realdata.py --out out/fusion_realdata

``--datasets breast_cancer`` runs one dataset (breast_cancer alone takes seconds);
``--render out/fusion_realdata/results.json`` rewrites the page from a saved run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pmed.io import write_text_atomic
from pmed.study import run_study
from pmed.study.spec import Study

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GDSC_EXAMPLE = REPO / "examples" / "gdsc_nutlin_fusion.yaml"
DOC = REPO / "docs" / "results" / "fusion_realdata.md"
HORIZON_DAYS = 1826  # 5 years
TARGET = "metastasis_5y"
CLINICAL = ["age", "er", "grade", "size"]
GRADES = ["well differentiated", "intermediate", "poorly differentiated"]
METHODS = ("late", "early")
METRIC_NAMES = {"auroc": "AUROC", "r2": "R²"}
# what the benchmark does not read: left out to save time, no number on the page depends on it
QUIET = {"report": False, "coefficient_bootstrap": 0}


# ---------------------------------------------------------------------- breast_cancer
def breast_cancer_table() -> tuple[pd.DataFrame, dict]:
    """The patients table with the 5-year metastasis target, and counts of who was kept.

    Returns
    -------
    (pandas.DataFrame, dict)
        ``patient_id``, the clinical columns, the 76 genes and ``metastasis_5y`` (1: distant
        metastasis by day 1826; 0: followed beyond day 1826 without it before); the counts
        ``n_all``, ``n_excluded`` (censored before 5 years), ``n``, ``n_events``,
        ``n_grade_unknown``.
    """
    from sksurv.datasets import load_breast_cancer

    X, y = load_breast_cancer()
    event, time_ = np.asarray(y["e.tdm"], dtype=bool), np.asarray(y["t.tdm"], dtype=float)
    target = np.where(event & (time_ <= HORIZON_DAYS), 1.0, np.where(time_ > HORIZON_DAYS, 0.0, np.nan))
    df = X.copy()
    # the file spells the missing grade "unkown" (2 patients): missing, not a fourth grade
    grade = df["grade"].astype(str)
    n_unknown = int((~grade.isin(GRADES)).sum())
    df["grade"] = grade.where(grade.isin(GRADES))
    df["er"] = df["er"].astype(str)
    genes = [c for c in X.columns if c not in CLINICAL]
    df = df[CLINICAL + genes]
    df.insert(0, "patient_id", [f"BC{i:03d}" for i in range(len(df))])
    df[TARGET] = target
    keep = ~np.isnan(target)
    df = df[keep].reset_index(drop=True)
    df[TARGET] = df[TARGET].astype(int)
    counts = {"n_all": len(X), "n_excluded": int((~keep).sum()), "n": int(keep.sum()),
              "n_events": int(df[TARGET].sum()), "n_grade_unknown": n_unknown, "n_genes": len(genes)}
    return df, counts


def breast_cancer_schema(genes: list[str]) -> str:
    """The schema YAML of the breast_cancer table (er and grade categorical)."""
    cols = {
        "age": {"type": "float", "unit": "years", "min": 0, "max": 120},
        "er": {"type": "category", "categories": ["negative", "positive"],
               "description": "oestrogen receptor status"},
        "grade": {"type": "category", "categories": GRADES, "description": "tumour grade"},
        "size": {"type": "float", "unit": "cm", "min": 0, "description": "tumour size"},
        **{g: {"type": "float", "description": "gene expression (Affymetrix probe set)"} for g in genes},
        TARGET: {"type": "int", "min": 0, "max": 1,
                 "description": f"distant metastasis within {HORIZON_DAYS} days"},
    }
    return yaml.safe_dump({"id": "patient_id", "columns": cols}, sort_keys=False)


def breast_cancer_study(method: str) -> dict:
    """The breast_cancer study for fusion ``method``."""
    return {
        "name": f"breast-cancer-fusion-{method}",
        "data": {"patients": "patients.csv", "schema": "schema.yaml"},
        "target": {"column": TARGET, "task": "binary"},
        "models": [{"family": "linear"}],
        "evaluation": {"folds": 5, "repeats": 1, "select_by": "auroc", **QUIET},
        "fusion": {"method": method, "family": "linear",
                   "modalities": {"genes": {"columns": ["X*"]}, "clinical": {"columns": CLINICAL}}},
        "seed": 0,
    }


def run_breast_cancer(out: Path, methods) -> dict:
    """Write the breast_cancer table, schema and studies under ``out`` and run them."""
    folder = out / "breast_cancer"
    folder.mkdir(parents=True, exist_ok=True)
    df, counts = breast_cancer_table()
    genes = [c for c in df.columns if c not in ("patient_id", TARGET, *CLINICAL)]
    df.to_csv(folder / "patients.csv", index=False)
    (folder / "schema.yaml").write_text(breast_cancer_schema(genes))
    runs = {}
    for method in methods:
        path = folder / f"study_{method}.yaml"
        path.write_text(yaml.safe_dump(breast_cancer_study(method), sort_keys=False))
        t0 = time.perf_counter()
        res = run_study(path, folder / f"out_{method}")
        runs[method] = summarise(res, time.perf_counter() - t0)
    return {"counts": counts, "runs": runs}


# ---------------------------------------------------------------------- GDSC
def gdsc_study(method: str) -> Study:
    """``examples/gdsc_nutlin_fusion.yaml`` with ``fusion.method`` set (and the quiet options)."""
    raw = yaml.safe_load(GDSC_EXAMPLE.read_text())
    raw["fusion"]["method"] = method
    raw["evaluation"].update(QUIET)
    raw["name"] = f"{raw['name']}-{method}"
    study = Study.model_validate(raw)
    study.base_dir = GDSC_EXAMPLE.parent
    study.source_text = yaml.safe_dump(raw, sort_keys=False)
    return study


def run_gdsc(out: Path, methods) -> dict:
    """Run the GDSC fusion study for each method; outputs under ``out/gdsc_<method>``."""
    runs = {}
    for method in methods:
        t0 = time.perf_counter()
        res = run_study(gdsc_study(method), out / f"gdsc_{method}")
        runs[method] = summarise(res, time.perf_counter() - t0)
    return {"runs": runs}


# ---------------------------------------------------------------------- numbers and page
def summarise(res, seconds: float) -> dict:
    """What the page needs from one study: its fusion metrics, the plain model, selection, time."""
    m = res.metrics
    return {"fusion": m["fusion"], "plain": m["models"]["linear"], "selected": res.selected,
            "select_by": m["select_by"], "n_patients": m["n_patients"], "seconds": seconds}


def _ci(d: dict, digits: int = 3) -> str:
    est, lo, hi = d.get("estimate"), d.get("ci_low"), d.get("ci_high")
    if est is None or not np.isfinite(est):
        return "n/a"
    f = f"{{:+.{digits}f}}" if "best_single" in d or d.get("_signed") else f"{{:.{digits}f}}"
    return f"{f.format(est)} ({f.format(lo)} to {f.format(hi)})"


def _signed(d: dict) -> str:
    return _ci({**d, "_signed": True})


def method_section(title: str, run: dict, metric_name: str) -> list[str]:
    """The table of item 2 for one dataset and fusion method."""
    fu, metric = run["fusion"], run["select_by"]
    mods = fu["modalities"]
    fused = "fusion (late)" if fu["method"] == "late" else "fusion (early)"

    def cell(metrics: dict) -> str:
        return _ci(metrics["metrics"][metric])

    lines = [f"### {title}: {fu['method']} fusion", "",
             f"{run['n_patients']} patients; family `{fu['family']}`; selected model: "
             f"`{run['selected']}`; run time {run['seconds']:.0f} s.", "",
             f"| model | features | {metric_name} (95 % CI) |", "|---|---:|---|"]
    for m, cols in mods.items():
        lines.append(f"| {m} alone | {len(cols)} | {cell(fu['single'][m])} |")
    n_all = sum(len(c) for c in mods.values())
    lines.append(f"| **{fused}** | {n_all} | **{cell(fu['fused'])}** |")
    for m in mods:
        rest = sum(len(c) for k, c in mods.items() if k != m)
        lines.append(f"| fused without {m} | {rest} | {cell(fu['without'][m])} |")
    lines.append(f"| plain `linear`, all features (candidate) | {run['plain']['n_features']} | "
                 f"{cell(run['plain'])} |")
    ci_method = fu["fused"]["metrics"][metric].get("method", "")
    lines += ["", f"Intervals of the rows above: {ci_method}.", "",
              "| paired difference | estimate (95 % CI) | method |", "|---|---|---|"]
    p = fu["paired"]
    lines.append(f"| fused − best single ({p['best_single']}) | {_signed(p)} | {p['method']} |")
    for m, g in fu["gain_of"].items():
        lines.append(f"| gain of {m} (fused − fused without it) | {_signed(g)} | {g['method']} |")
    lines += ["", f"Masked at prediction: the fold models score the test patients with one modality removed "
              f"for a random {next(iter(fu['masked'].values()))['fraction']:.0%} of them.", "",
              f"| modality masked | patients masked | {metric_name} full | masked | drop |",
              "|---|---:|---:|---:|---:|"]
    for m, d in fu["masked"].items():
        lines.append(f"| {m} | {d['n_masked']} | {d['full']:.3f} | {d['masked']:.3f} | {d['drop']:+.3f} |")
    avail = ", ".join(f"{m} {n}" for m, n in fu["availability"].items())
    lines += ["", f"Availability (patients with the modality): {avail}; with none: {fu['n_without_any']}.", ""]
    return lines


def _est(d: dict, metric: str) -> float:
    return float(d["metrics"][metric]["estimate"])


def reading(name: str, runs: dict) -> list[str]:
    """A few sentences that say what the numbers show, computed from them."""
    out = []
    for method, run in runs.items():
        fu, metric = run["fusion"], run["select_by"]
        shown = METRIC_NAMES.get(metric, metric)
        p = fu["paired"]
        fused, plain = _est(fu["fused"], metric), _est(run["plain"], metric)
        best = _est(fu["single"][p["best_single"]], metric)
        if p["ci_low"] > 0:
            verdict = "beats the best single modality, with a paired interval above 0"
        elif p["ci_high"] < 0:
            verdict = "is worse than the best single modality, with a paired interval below 0"
        elif p["estimate"] > 0:
            verdict = "is above the best single modality, but the paired interval includes 0"
        else:
            verdict = "does not beat the best single modality (the paired interval includes 0)"
        gains = [m for m, g in fu["gain_of"].items() if g["ci_low"] > 0]
        chance = 0.5 if metric == "auroc" else 0.0
        weak = [m for m, s in fu["single"].items() if s["metrics"][metric]["ci_low"] <= chance]
        out.append(
            f"- {name}, {method}: fused {shown} {fused:.3f} against {best:.3f} for "
            f"{p['best_single']} alone — the fused model {verdict}; "
            + (f"the modalities whose removal costs {shown} with an interval above 0: "
               f"{', '.join(gains)}" if gains else "no modality's removal costs the fused model "
               f"{shown} with an interval above 0")
            + f". The plain `linear` over all features: {plain:.3f}; "
            + ("identical to the fused model: with every modality present, early fusion's indicators are "
               "constant and it is the plain model." if abs(fused - plain) < 1e-9 else
               "the fused model is above it (no paired interval for this difference is computed)."
               if fused > plain else "the fused model is not above it.")
            + (f" Alone, {', '.join(weak)} has an interval that reaches chance ({shown} {chance:g})."
               if weak else "")
            + f" Selected: `{run['selected']}`.")
    return out


def render(raw: dict) -> str:
    """The results page from the raw numbers of this run."""
    lines = ["# Multimodal fusion on real data: breast_cancer and GDSC v17", "",
             results_header(raw.get("env")), "",
             "Issue #20, point 4b. Each study runs through `pmed.study.run_study`, once with late and once "
             "with early fusion (see [fusion.md](../fusion.md) for what each row means); every number "
             "below comes from this run. The script: `benchmarks/fusion_realdata.py`.", ""]
    if "breast_cancer" in raw:
        bc = raw["breast_cancer"]
        c = bc["counts"]
        lines += ["## breast_cancer (scikit-survival): genes + clinical", "",
                  f"`sksurv.datasets.load_breast_cancer()`: {c['n_all']} patients, {c['n_genes']} gene-expression "
                  "values and age, ER status, grade, tumour size. pmed's fusion takes binary and continuous "
                  f"targets, so the target is distant metastasis within 5 years ({HORIZON_DAYS} days): "
                  f"{c['n_excluded']} patients censored before 5 years without metastasis are excluded, "
                  f"leaving {c['n']} with {c['n_events']} events. {c['n_grade_unknown']} patients whose grade "
                  "the file gives as `unkown` have it missing. Modalities: `genes` (`X*`) and `clinical` "
                  "(age, er, grade, size); family `linear` (L2 logistic regression, C = 1); 5 folds, seed 0, "
                  "selected by AUROC. With two modalities, the fused model without one is the other alone.",
                  ""]
        for run in bc["runs"].values():
            lines += method_section("breast_cancer", run, "AUROC")
    if "gdsc" in raw:
        lines += ["## GDSC v17, Nutlin-3a: mutations + copy number + tissue", "",
                  "`examples/gdsc_nutlin_fusion.yaml`: ln(IC50) of Nutlin-3a for the screened cell lines; "
                  "modalities `mutations` (`*_mut`), `copy_number` (`gain_cnaPANCAN*`, `loss_cnaPANCAN*`) "
                  "and `tissue` (TISSUE_FACTOR, MSI_FACTOR); family `linear` (ridge, penalty by leave-one-out); "
                  "5 folds, seed 0, selected by R².", ""]
        for run in raw["gdsc"]["runs"].values():
            lines += method_section("GDSC Nutlin-3a", run, "R²")
    lines += ["## Reading", ""]
    if "breast_cancer" in raw:
        lines += reading("breast_cancer", raw["breast_cancer"]["runs"])
    if "gdsc" in raw:
        lines += reading("GDSC Nutlin-3a", raw["gdsc"]["runs"])
    lines += ["", "Every modality is available for every patient in both datasets, so the masking rows are the "
              "only view here of a fused model answering without a modality.", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=default_out("fusion_realdata"),
                   help="output folder (default out/fusion_realdata)")
    p.add_argument("--doc", type=Path, default=DOC, help=f"page to write (default {DOC.relative_to(REPO)})")
    p.add_argument("--datasets", nargs="*", default=["breast_cancer", "gdsc"],
                   choices=["breast_cancer", "gdsc"], help="datasets to run (default both)")
    p.add_argument("--render", type=Path, default=None, metavar="RESULTS_JSON",
                   help="only rewrite the page from a previous run's results.json (no study is run)")
    p.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS),
                   help="fusion methods (default late early)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:  # the page again from saved numbers, e.g. after a wording change
        write_text_atomic(args.doc, render(json.loads(args.render.read_text())))
        print(f"wrote {args.doc} from {args.render}")
        return 0
    env = run_environment(packages=["scikit-survival", "PyYAML"], argv=argv)
    args.out.mkdir(parents=True, exist_ok=True)
    raw: dict = {"env": env}
    t0 = time.perf_counter()
    if "breast_cancer" in args.datasets:
        raw["breast_cancer"] = run_breast_cancer(args.out, args.methods)
        print(f"breast_cancer done ({time.perf_counter() - t0:.0f} s)", flush=True)
    if "gdsc" in args.datasets:
        raw["gdsc"] = run_gdsc(args.out, args.methods)
        print(f"gdsc done ({time.perf_counter() - t0:.0f} s)", flush=True)
    raw["seconds"] = time.perf_counter() - t0
    write_text_atomic(args.out / "results.json", json.dumps(raw, indent=1, default=float))
    write_text_atomic(args.doc, render(raw))
    print(f"wrote {args.doc} and {args.out / 'results.json'} ({raw['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
