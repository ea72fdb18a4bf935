"""Calibration of pmed's default binary studies before and after ``class_weight=None`` (issue #15).

Issue #15 changed every binary model's default from ``class_weight='balanced'`` to ``None``;
imbalance handling became opt-in (``imbalance: {weighting: balanced}`` in a study, which also
recalibrates inside each training fold). This script runs each default binary study three ways
and reads the out-of-fold calibration that pmed's own evaluation reports
(``evaluation/metrics.json``: calibration slope and intercept with Wald 95% intervals, AUROC,
Brier score, per model):

* **before** — a copy of the study with ``params: {class_weight: balanced}`` on every model whose
  family takes weights (the old default, no code change);
* **after** — the study file unchanged (today's default);
* **opt-in** — a copy with ``imbalance: {weighting: balanced}`` (balanced weights + sigmoid
  recalibration, fitted inside each training fold).

The copies live in ``OUT/studies/`` with absolute data paths. The studies are
``examples/breast_cancer.yaml`` and every binary study that ``pmed demo`` writes (its response
study, the CAD study with the polygenic score and, with the omics extra, the response study with
a single-cell block): the demo runs once into ``OUT/demo`` through :func:`pmed.demo.run_demo`.
Study outputs go to ``OUT/runs/<study>/<variant>/``, raw numbers to ``OUT/results.json``, and the
page to ``docs/results/calibration_class_weight.md``.

Run from the repository root (12 minutes on 2 shared cores, the demo 5 of them)::

    .venv/bin/python benchmarks/calibration_class_weight.py
    .venv/bin/python benchmarks/calibration_class_weight.py --skip-demo      # breast cancer only
    .venv/bin/python benchmarks/calibration_class_weight.py --render-only    # page from results.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from pmed.io import write_text_atomic
from pmed.io.jsonio import to_json
from pmed.models.registry import get_family
from pmed.models.zoo import DEFAULT_FAMILIES
from pmed.study import run_study
from pmed.study.spec import load_study

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment  # noqa: E402

__all__ = ["main", "render", "run_variants", "study_summary", "variant_study"]

REPO = Path(__file__).resolve().parents[1]
NAME = "calibration_class_weight"
DOC = REPO / "docs" / "results" / f"{NAME}.md"
BREAST_CANCER = REPO / "examples" / "breast_cancer.yaml"
VARIANTS = ("before", "after", "optin")
LABELS = {"before": "before (balanced)", "after": "after (None)", "optin": "opt-in (balanced + sigmoid)"}
SHORT = {"before": "before", "after": "after", "optin": "opt-in"}
METRICS = ("calibration_slope", "calibration_intercept", "auroc", "brier")
# how pmed's evaluation names the predictions of exactly 0 or 1 that the logistic recalibration
# fit leaves out (their logit is infinite), as rms::val.prob does
LEFT_OUT = re.compile(r"(\d+) predictions? of exactly 0 or 1 left out")
DEMO_PATIENTS = 1000
DEMO_SEED = 0


def _rel(path: Path) -> str:
    """``path`` relative to the repository when inside it (for the page), else as given."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _absolute_paths(spec: dict[str, Any], base: Path) -> None:
    """Make the data paths of a study (patients, schema, blocks) absolute, in place."""
    data = spec.get("data") or {}

    def absolute(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    for key in ("patients", "schema"):
        if data.get(key):
            data[key] = absolute(data[key])
    if data.get("blocks"):
        data["blocks"] = {k: absolute(v) for k, v in data["blocks"].items()}


def variant_study(src: Path, variant: str, folder: Path, key: str) -> Path:
    """The study file that runs ``src`` as ``variant``.

    Parameters
    ----------
    src : pathlib.Path
        The study YAML.
    variant : {'before', 'after', 'optin'}
        ``after`` is ``src`` itself; ``before`` gives every model whose family takes weights
        ``params.class_weight: balanced`` (unless its params set one); ``optin`` adds
        ``imbalance: {weighting: balanced}``. Both copies get absolute data paths.
    folder : pathlib.Path
        Where the copies are written, as ``<key>_<variant>.yaml``.
    key : str
        Short name of the study.

    Returns
    -------
    pathlib.Path
        The study file to run.
    """
    if variant == "after":
        return src
    spec = yaml.safe_load(src.read_text())
    _absolute_paths(spec, src.resolve().parent)
    if variant == "before":
        models = spec.get("models") or [{"family": f} for f in DEFAULT_FAMILIES]
        for m in models:
            if get_family(m["family"]).class_weight:
                m["params"] = {"class_weight": "balanced", **(m.get("params") or {})}
        spec["models"] = models
    elif variant == "optin":
        spec["imbalance"] = {"weighting": "balanced"}
    else:
        raise SystemExit(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
    dst = folder / f"{key}_{variant}.yaml"
    dst.parent.mkdir(parents=True, exist_ok=True)
    header = f"# {variant} copy of {src} written by benchmarks/{NAME}.py\n"
    write_text_atomic(dst, header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return dst


def _check_settings(imbalance: dict[str, Any], variant: str, families: dict[str, str]) -> None:
    """Fail loudly if metrics.json says that a run did not use the variant's settings."""
    for name, ran in imbalance["models"].items():
        takes = get_family(families[name]).class_weight
        want_cw = "balanced" if variant in ("before", "optin") and takes else None
        want_cal = "sigmoid" if variant == "optin" else None
        if ran.get("class_weight") != want_cw or ran.get("calibration") != want_cal:
            raise SystemExit(f"{variant} run of model {name} ran with {ran}, expected "
                               f"class_weight={want_cw}, calibration={want_cal}")


def study_summary(out: Path) -> dict[str, Any]:
    """The numbers of one ``pmed run`` output folder that the page reports.

    Reads ``metrics.json`` (patients, prevalence, selected model, imbalance settings) and
    ``evaluation/metrics.json`` (per model: calibration slope and intercept, AUROC and Brier
    score, each ``{estimate, ci_low, ci_high}``, on the first repeat's out-of-fold predictions;
    ``calibration_left_out``, the predictions of exactly 0 or 1 that the slope and intercept fit
    left out).
    """
    top = json.loads((out / "metrics.json").read_text())
    ev = json.loads((out / "evaluation" / "metrics.json").read_text())
    models = {}
    for name, r in ev["models"].items():
        m = r["metrics"]
        left_out = LEFT_OUT.search(m["calibration_slope"].get("method", ""))
        models[name] = {"family": top["models"][name]["family"],
                        **{k: {f: m[k].get(f) for f in ("estimate", "ci_low", "ci_high")} for k in METRICS},
                        "calibration_left_out": int(left_out.group(1)) if left_out else 0}
    return {"n_patients": top["n_patients"], "n_events": top.get("n_events"),
            "prevalence": top.get("prevalence"), "n_evaluated": ev["n"], "cv": top["cv"],
            "select_by": top["select_by"], "selected_model": top["selected_model"],
            "imbalance": top.get("imbalance"), "models": models}


def run_variants(src: Path, key: str, out: Path, *, source: str) -> dict[str, Any]:
    """Run study ``src`` before / after / opt-in into ``OUT/runs/<key>/<variant>``; the numbers."""
    study = load_study(src)
    entry: dict[str, Any] = {"key": key, "source": source, "name": study.name,
                             "description": study.description.strip(), "runs": {}}
    for variant in VARIANTS:
        path = variant_study(src, variant, out / "studies", key)
        run_out = out / "runs" / key / variant
        t = time.time()
        print(f"[{time.strftime('%H:%M:%S')}] {key} {variant}: pmed run {_rel(path)} --out {_rel(run_out)}",
              file=sys.stderr, flush=True)
        run_study(load_study(path), run_out)
        seconds = time.time() - t
        summary = study_summary(run_out)
        _check_settings(summary["imbalance"], variant,
                        {n: m["family"] for n, m in summary["models"].items()})
        entry["runs"][variant] = {"study_file": _rel(path), "out": _rel(run_out), "seconds": seconds,
                                  **summary}
        slopes = ", ".join(f"{n} {m['calibration_slope']['estimate']:.3f}" for n, m in summary["models"].items())
        print(f"    {seconds:.0f} s; slopes {slopes}", file=sys.stderr, flush=True)
    return entry


def demo_studies(folder: Path) -> tuple[list[Path], list[str]]:
    """The binary study YAMLs that ``pmed demo`` wrote into ``folder`` (its response study
    first), and the names of those skipped for not being binary."""
    binary: list[Path] = []
    other: list[str] = []
    for path in sorted(folder.glob("*.yaml"), key=lambda p: (p.name != "study.yaml", p.name)):
        if load_study(path).target.task == "binary":
            binary.append(path)
        else:
            other.append(path.name)
    return binary, other


# --- the page ------------------------------------------------------------------------------------


def _ci(m: dict[str, Any], digits: int = 3) -> str:
    e, lo, hi = m["estimate"], m.get("ci_low"), m.get("ci_high")
    if e is None:
        return "–"
    if lo is None or hi is None:
        return f"{e:.{digits}f}"
    return f"{e:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def _est(m: dict[str, Any], digits: int = 3) -> str:
    return "–" if m["estimate"] is None else f"{m['estimate']:.{digits}f}"


def _holds_one(m: dict[str, Any]) -> bool:
    lo, hi = m.get("ci_low"), m.get("ci_high")
    return lo is not None and hi is not None and lo <= 1 <= hi


def _study_section(s: dict[str, Any]) -> list[str]:
    runs = s["runs"]
    first = runs["after"]
    cv = first["cv"]
    scheme = f"{cv['folds']}-fold CV" + (f" × {cv['repeats']}" if cv["repeats"] > 1 else "")
    names = list(first["models"])
    lines = [f"## {s['name']}", "",
             f"`{s['source']}`: {first['n_patients']} patients, {first['n_events']} events (prevalence "
             f"{first['prevalence']:.1%}), {scheme}, seed {cv['seed']}; models selected by "
             f"{first['select_by']}. Calibration slope (Wald 95% CI):", "",
             "| model | " + " | ".join(f"slope {LABELS[v]}" for v in VARIANTS) + " |",
             "|---|" + "---|" * len(VARIANTS)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(_ci(runs[v]["models"][n]["calibration_slope"]) for v in VARIANTS) + " |")
    lines += ["", "Calibration intercept, AUROC and Brier score (estimates; before / after / opt-in):", "",
              "| model | " + " | ".join(f"intercept {SHORT[v]}" for v in VARIANTS) + " | "
              + " | ".join(f"AUROC {SHORT[v]}" for v in VARIANTS) + " | "
              + " | ".join(f"Brier {SHORT[v]}" for v in VARIANTS) + " |",
              "|---|" + "---|" * (3 * len(VARIANTS))]
    for n in names:
        cells = [_est(runs[v]["models"][n]["calibration_intercept"]) for v in VARIANTS]
        cells += [_est(runs[v]["models"][n]["auroc"]) for v in VARIANTS]
        cells += [_est(runs[v]["models"][n]["brier"], 4) for v in VARIANTS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")

    def brier(v: str, n: str) -> float:
        return runs[v]["models"][n]["brier"]["estimate"]

    lower = [n for n in names if brier("after", n) < brier("before", n) - 5e-5]
    higher = [n for n in names if brier("after", n) > brier("before", n) + 5e-5]
    same = [n for n in names if n not in lower and n not in higher]
    holds = {v: [n for n in names if _holds_one(runs[v]["models"][n]["calibration_slope"])] for v in VARIANTS}
    lines += ["",
              "Selected model: " + ", ".join(f"{SHORT[v]} {runs[v]['selected_model']}" for v in VARIANTS) + ". "
              "Models whose slope interval holds 1: " + "; ".join(
                  f"{SHORT[v]} {len(holds[v])} of {len(names)}" + (f" ({', '.join(holds[v])})" if holds[v] else "")
                  for v in VARIANTS) + ". "
              "Brier score after vs before: " + "; ".join(
                  f"{label} for {', '.join(group)}" for label, group in
                  (("lower", lower), ("higher", higher), ("within 0.00005", same)) if group) + ". "
              "Run times: " + ", ".join(f"{SHORT[v]} {runs[v]['seconds']:.0f} s" for v in VARIANTS) + ".",
              ""]
    left = {n: [runs[v]["models"][n].get("calibration_left_out", 0) for v in VARIANTS] for n in names}
    left = {n: c for n, c in left.items() if any(c)}
    if left:
        lines += [
            "Predictions of exactly 0 or 1 (infinite logit) that the slope and intercept fits left out, "
            "as rms::val.prob does (before / after / opt-in, of "
            f"{first['n_evaluated']}): " + "; ".join(f"{n} {' / '.join(map(str, c))}" for n, c in left.items())
            + ". They still count in the Brier score.", ""]
    return lines


def _overview(studies: list[dict[str, Any]]) -> list[str]:
    lines = ["| study | patients | prevalence | models | median slope " + " / ".join(SHORT[v] for v in VARIANTS)
             + " | slope interval holds 1 (" + " / ".join(SHORT[v] for v in VARIANTS) + ") |",
             "|---|---|---|---|---|---|"]
    for s in studies:
        runs = s["runs"]
        names = list(runs["after"]["models"])
        med = [statistics.median(runs[v]["models"][n]["calibration_slope"]["estimate"] for n in names)
               for v in VARIANTS]
        holds = [sum(_holds_one(runs[v]["models"][n]["calibration_slope"]) for n in names) for v in VARIANTS]
        lines.append(f"| {s['name']} (`{s['source']}`) | {runs['after']['n_patients']} | "
                     f"{runs['after']['prevalence']:.1%} | {len(names)} | "
                     + " / ".join(f"{x:.3f}" for x in med) + " | " + " / ".join(map(str, holds)) + " |")
    return lines


def render(results: dict[str, Any]) -> str:
    """The results page, from what :func:`main` saved in ``results.json``."""
    studies = results["studies"]
    demo = results.get("demo")
    command = (results.get("environment") or {}).get("command") or f"python benchmarks/{NAME}.py"
    lines = [
        "# Calibration slope before and after `class_weight=None` became the default",
        "",
        results_header(results.get("environment")),
        "",
        "Issue #15 (estimators) changed every binary model of the zoo (logistic, elastic net, random",
        "forest, LightGBM, SVM), GRU-D and the CNN to `class_weight=None`. Imbalance handling is now",
        "opt-in (`imbalance: {weighting: balanced}` in a study, which also recalibrates inside each",
        "training fold; see `docs/study.md`). This page records the out-of-fold calibration of the",
        "default binary studies before and after, as pmed's own evaluation reports it",
        "(`evaluation/metrics.json`: `calibration_slope` and `calibration_intercept` are the",
        "coefficients of `glm(y ~ logit(p), binomial)`, rms::val.prob's definitions, Wald 95% intervals;",
        "ideal slope 1, intercept 0; computed on the first repeat's out-of-fold predictions). Numbers",
        "are from single runs of each study with its own seed; the header above says on what machine.",
        "",
        "\"Before\" is the old default, reproduced by giving every model `params: {class_weight: balanced}`",
        "in a temporary copy of the study (no code change). \"After\" is the unmodified study with today's",
        "code. \"Opt-in\" adds `imbalance: {weighting: balanced}` (balanced weights + sigmoid",
        "recalibration, 3 internal folds, fitted inside each training fold). The script checks in each",
        "run's `metrics.json` (`imbalance.models`) that every model ran with the settings of its column.",
        "",
        "## Command",
        "",
        "```sh",
        f".venv/bin/python benchmarks/{NAME}.py                # every study below",
        f".venv/bin/python benchmarks/{NAME}.py --skip-demo    # the breast cancer study only",
        f".venv/bin/python benchmarks/{NAME}.py --render-only  # rewrite this page from OUT/results.json",
        "```",
        "",
        f"This run: `{command}`, {results['seconds'] / 60:.1f} min in all.",
        "The script writes the before and opt-in copies of each study to `OUT/studies/` (absolute data",
        "paths), runs the three variants through `pmed.study.run_study` (what `pmed run` calls) into",
        "`OUT/runs/<study>/<variant>/`, and keeps the numbers in `OUT/results.json`"
        + (f" (`OUT` was `{results['out']}`)." if results.get("out") else "."),
    ]
    if demo:
        lines += [
            f"The demo's studies are the binary ones that `pmed demo` writes: "
            f"`pmed.demo.run_demo(OUT/demo, n_patients={demo['n_patients']}, seed={demo['seed']})` "
            f"ran once ({demo['seconds'] / 60:.1f} min, its own runs of the studies included) and wrote "
            + ", ".join(f"`{p}`" for p in demo["studies"]) + "; each was then run the three ways"
            + (f" (not binary, skipped: {', '.join(demo['skipped'])})" if demo.get("skipped") else "") + ".",
        ]
    else:
        lines += ["The demo's studies were skipped in this run (`--skip-demo`)."]
    lines += ["", "## Overview", ""] + _overview(studies) + [""]
    for s in studies:
        lines += _study_section(s)
    lines += [
        "## Reading the tables",
        "",
        "Balanced weights multiply each patient's loss by the inverse of its class's share, so a model",
        "fitted with them shifts its risks towards 0.5: too high where events are rare, too low where",
        "they are common. On the logit scale that is mostly a shift, which the intercept shows and the",
        "slope barely does; the ranking of patients, and so AUROC, changes only through the fit itself.",
        "The intercept of these tables is fitted together with the slope (val.prob's `Intercept`), so it",
        "reads as calibration-in-the-large only where the slope is near 1. The slope asks whether the",
        "risks are too spread (below 1) or too narrow (above 1) around their mean: where it is far from 1",
        "with and without the weights, the weighting was not what miscalibrated the model. The opt-in",
        "recalibrates (sigmoid) inside each training fold, on internal folds of it: it moves slope and",
        "intercept towards 1 and 0 where the model's risks were distorted, but is no guarantee (it can",
        "leave risks too narrow where the classes are nearly separable), and it costs three more fits",
        "per fold.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=default_out(NAME), help=f"output folder (default out/{NAME})")
    ap.add_argument("--doc", type=Path, default=DOC, help=f"results page (default {_rel(DOC)})")
    ap.add_argument("--skip-demo", action="store_true", help="breast cancer only: do not run pmed demo")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the page from OUT/results.json without running anything")
    args = ap.parse_args(argv)
    results_path = args.out / "results.json"
    if args.render_only:
        results = json.loads(results_path.read_text())
        write_text_atomic(args.doc, render(results))
        print(f"rewrote {args.doc} from {results_path}", file=sys.stderr)
        return 0

    env = run_environment(["lightgbm", "torch", "scanpy", "pyyaml"], argv)
    t0 = time.time()
    results: dict[str, Any] = {"environment": env, "out": str(args.out), "demo": None, "studies": []}

    def save() -> None:
        results["seconds"] = time.time() - t0
        results_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(results_path, to_json(results))

    results["studies"].append(run_variants(BREAST_CANCER, "breast_cancer", args.out, source=_rel(BREAST_CANCER)))
    save()
    if not args.skip_demo:
        from pmed.demo import run_demo

        folder = args.out / "demo"
        for stale in folder.glob("*.yaml"):  # a study an earlier demo wrote and this one may not
            stale.unlink()
        print(f"[{time.strftime('%H:%M:%S')}] pmed demo into {_rel(folder)}", file=sys.stderr, flush=True)
        t = time.time()
        run_demo(folder, n_patients=DEMO_PATIENTS, seed=DEMO_SEED)
        binary, skipped = demo_studies(folder)
        results["demo"] = {"folder": _rel(folder), "n_patients": DEMO_PATIENTS, "seed": DEMO_SEED,
                           "seconds": time.time() - t, "studies": [p.name for p in binary], "skipped": skipped}
        save()
        for path in binary:
            key = "demo_" + (path.stem.removesuffix("_study") if path.stem != "study" else "response")
            results["studies"].append(run_variants(path, key, args.out,
                                                   source=f"pmed demo: {path.name}"))
            save()
    save()
    write_text_atomic(args.doc, render(results))
    print(f"wrote {args.doc} and {results_path} in {(time.time() - t0) / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
