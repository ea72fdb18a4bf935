"""Treatment effects against known answers (issue #18, point 5): ACTG175 and IHDP.

* **ACTG175** — the AIDS Clinical Trials Group study 175 as lifelines bundles it (2,139 patients
  randomised 1:1:1:1 to zidovudine, zidovudine + didanosine, zidovudine + zalcitabine,
  didanosine). Outcome: CD4 count at 20 ± 5 weeks (``cd420``). Each arm against zidovudine:
  difference in means, cross-fitted AIPW ATE, the effect by prior antiretroviral therapy
  (``str2``), and how well each learner ranks patients by benefit.
* **IHDP, response surface B** (Hill 2011) as EconML generates it (``ihdp_surface_B``; 747
  children, 25 covariates, the treated a non-random subset): the true effect of every child is
  known, so each learner's out-of-fold CATE gets √PEHE (root mean squared error of the CATE)
  and its ATE error, over realisations 0…N−1, beside the published figures of Shalit, Johansson
  & Sontag (2017, ICML; surface B, 1000 realisations): BART 2.1, causal forest 3.8, CFR-Wass 0.71
  (within-sample √PEHE). The coverage of the true CATE by the causal forest's 95 % intervals is
  reported too.

Run from the repository root (not in CI; about 10 minutes on 2 cores)::

    .venv/bin/python benchmarks/effects_validation.py            # 10 IHDP realisations
    .venv/bin/python benchmarks/effects_validation.py --ihdp 3   # shorter

Writes ``OUT/results.json`` and the page ``docs/results/effects_validation.md``.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_out, results_header, run_environment  # noqa: E402

from pmed.effects import LEARNERS, run_effects  # noqa: E402
from pmed.io import write_text_atomic  # noqa: E402

NAME = "effects_validation"
DOC = Path(__file__).resolve().parents[1] / "docs" / "results" / f"{NAME}.md"
ARMS = {0: "zidovudine", 1: "zidovudine + didanosine", 2: "zidovudine + zalcitabine", 3: "didanosine"}
PUBLISHED = {"BART": 2.1, "causal forest": 3.8, "CFR-Wass": 0.71}


def actg175(n_boot: int) -> dict:
    df = pd.read_csv(importlib.resources.files("lifelines.datasets") / "ACTG175.csv", index_col=0)
    df = df.set_index(df["pidnum"].astype(str).rename("patient_id"))
    cov = ["age", "wtkg", "karnof", "cd40", "cd80", "gender", "race", "homo", "drugs", "symptom", "str2", "hemo"]
    t0 = time.perf_counter()
    r = run_effects(df[[*cov, "arms", "cd420"]], treatment="arms", outcome="cd420", control=0, randomized=True,
                    propensity=0.25, learners=list(LEARNERS), n_boot=n_boot, subgroups=["str2"])
    return {"seconds": time.perf_counter() - t0, "metrics": r.metrics}


def _ihdp_truth(seed: int):
    """EconML's surface-B draw for ``seed`` and every child's true effect (EconML returns both)."""
    from econml.data.dgps import ihdp_surface_B

    Y, T, X, tau = ihdp_surface_B(random_state=seed)
    return np.ravel(Y), np.ravel(T).astype(int), X, np.ravel(tau)


def ihdp(n: int, n_boot: int) -> list[dict]:
    rows = []
    for seed in range(n):
        y, t, X, tau = _ihdp_truth(seed)
        df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])],
                          index=pd.Index([f"C{i:03d}" for i in range(len(y))], name="patient_id"))
        df["treated"], df["y"] = t, y
        t0 = time.perf_counter()
        r = run_effects(df, treatment="treated", outcome="y", control=0, learners=list(LEARNERS), n_boot=n_boot)
        secs = time.perf_counter() - t0
        arm = r.metrics["arms"]["1"]
        keep_true = float(tau.mean())
        row = {"seed": seed, "seconds": secs, "true_ate": keep_true,
               "aipw_ate": arm["ate"]["estimate"], "aipw_covers": arm["ate"]["ci_low"] <= keep_true <= arm["ate"]["ci_high"],
               "n_outside": arm["overlap"]["n_outside"], "learners": {}}
        c = r.cate.set_index("patient_id")
        for m in LEARNERS:
            cm = c[c["learner"] == m].reindex(df.index)
            est = cm["cate"].to_numpy()
            row["learners"][m] = {"pehe": float(np.sqrt(np.mean((est - tau) ** 2))),
                                  "ate_error": float(abs(est.mean() - keep_true)),
                                  "coverage": (float(np.mean((cm["ci_low"] <= tau) & (tau <= cm["ci_high"])))
                                               if cm["ci_low"].notna().any() else None)}
        rows.append(row)
        print(f"IHDP {seed}: " + ", ".join(f"{m} {v['pehe']:.2f}" for m, v in row["learners"].items()), flush=True)
    return rows


def render(res: dict) -> str:
    lines = ["# Treatment effects against known answers: ACTG175 and IHDP\n",
             "Written by `benchmarks/effects_validation.py` (issue #18, point 5). Every number below was "
             "measured in the run this header describes.\n", results_header(res["env"]), "",
             "## ACTG175: each arm against zidovudine (CD4 count at 20 weeks)\n",
             "2,139 patients randomised 1:1:1:1 (lifelines' copy); covariates age, weight, Karnofsky score, "
             "baseline CD4/CD8, sex, race, homosexual activity, drug use, symptoms, prior antiretroviral therapy "
             "(`str2`), haemophilia; known allocation 1/4 per arm; 5 cross-fitting folds. "
             f"Run time {res['actg']['seconds']:.0f} s.\n",
             "| arm | n | difference in means (95 % CI) | AIPW ATE (95 % CI) | ATE, no prior therapy (str2 = 0) | ATE, prior therapy (str2 = 1) |",
             "|---|---:|---|---|---|---|"]
    f = lambda d: f"{d['estimate']:+.1f} ({d['ci_low']:+.1f} to {d['ci_high']:+.1f})"  # noqa: E731
    arms = sorted(res["actg"]["metrics"]["arms"].items(), key=lambda kv: int(kv[0]))
    for a, m in arms:
        sg = m["subgroups"]["str2"]
        lines.append(f"| {ARMS[int(a)]} | {m['n']} | {f(m['difference_in_means'])} | {f(m['ate'])} | "
                     f"{f(sg['0'])} | {f(sg['1'])} |")
    lines += ["", "How well each learner ranks patients by benefit (AUTOC with its bootstrap interval; 0 = no better "
              "than chance) and the calibration slope of its CATE (1 = heterogeneity of the right size):\n",
              "| arm | " + " | ".join(LEARNERS) + " |", "|---|" + "---|" * len(LEARNERS)]
    for a, m in arms:
        cells = [f"{v['autoc']['estimate']:+.1f} ({v['autoc']['ci_low']:+.1f} to {v['autoc']['ci_high']:+.1f}); "
                 f"slope {v['calibration_slope']['estimate']:.2f}" for v in m["learners"].values()]
        lines.append(f"| {ARMS[int(a)]} | " + " | ".join(cells) + " |")
    rows = res["ihdp"]
    lines += ["", f"## IHDP (response surface B): {len(rows)} realisations\n",
              "EconML's `ihdp_surface_B(random_state=r)` for r = 0…" + f"{len(rows) - 1}, which returns every child's "
              "true effect with the data. √PEHE and ATE error of each learner's **out-of-fold** CATE "
              "(each child predicted by models fitted without it: closer to the papers' out-of-sample than to "
              "their within-sample figures), mean ± SD over the realisations.\n",
              "| learner | √PEHE | ATE error | coverage of the true CATE by its 95 % intervals |", "|---|---|---|---|"]
    for m in LEARNERS:
        p = np.array([r["learners"][m]["pehe"] for r in rows])
        e = np.array([r["learners"][m]["ate_error"] for r in rows])
        cov = [r["learners"][m]["coverage"] for r in rows if r["learners"][m]["coverage"] is not None]
        lines.append(f"| {m} | {p.mean():.2f} ± {p.std(ddof=1) if len(p) > 1 else 0:.2f} | "
                     f"{e.mean():.2f} ± {e.std(ddof=1) if len(e) > 1 else 0:.2f} | "
                     f"{f'{np.mean(cov):.1%}' if cov else '(no intervals)'} |")
    aipw = np.array([abs(r["aipw_ate"] - r["true_ate"]) for r in rows])
    lines += ["", f"The cross-fitted AIPW ATE (modelled propensity; patients outside [0.05, 0.95] left out, "
              f"{np.mean([sum(r['n_outside'].values()) for r in rows]):.0f} on average) was off the true ATE of all "
              f"children by {aipw.mean():.2f} ± {aipw.std(ddof=1) if len(aipw) > 1 else 0:.2f}; its interval covered "
              f"it in {sum(r['aipw_covers'] for r in rows)} of {len(rows)} realisations.\n",
              "Published √PEHE on surface B (Shalit, Johansson & Sontag 2017, Table 1, within-sample, 1000 "
              "realisations): " + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items()) + ".\n",
              f"Seconds per realisation (all {len(LEARNERS)} learners): {np.mean([r['seconds'] for r in rows]):.0f}.\n",
              "## Repeat\n", "```bash", f"{res['env'].get('command', '.venv/bin/python benchmarks/effects_validation.py')}",
              "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out(NAME))
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--ihdp", type=int, default=10, help="IHDP realisations (default 10)")
    ap.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples of the ranking metrics")
    args = ap.parse_args(argv)
    env = run_environment(["econml", "scikit-learn", "lifelines"])
    res = {"env": env, "actg": actg175(args.bootstrap), "ihdp": ihdp(args.ihdp, args.bootstrap)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "results.json", json.dumps(res, indent=2, default=str))
    write_text_atomic(args.doc, render(res))
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
