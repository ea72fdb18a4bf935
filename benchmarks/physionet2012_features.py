"""PhysioNet 2012: do clinical feature families beyond pmed's summaries raise Event 1?

Adds, one family at a time, features that the challenge's entries and the SAPS/APACHE scores use
and that ``pmed.timeseries.timeseries_block`` does not compute, to pmed's 0-48 h features, and
cross-validates the benchmark's LightGBM (small-data settings, pmed's pipeline) on four seeded
5-fold splits. Event 1 uses the batch-prevalence rule (flag the training fold's death rate among
the test fold's predictions). Families:

- ``abnormal``: per variable, the fraction of measurements outside a normal range;
- ``urine``: urine output per kg and hour over 0-48 h and 24-48 h, and totals per day;
- ``worst24``: minimum and maximum of 15 vitals and labs in 0-24 h and in 24-48 h;
- ``care``: hours to first ventilation, ventilation records, measurements in the first and the
  last 12 h.

Writes a Markdown table (``--doc``) and the numbers (``--json``, default
``OUT/results.json`` in ``--out``, default ``out/physionet2012_features``). Run from the
repository root::

    .venv/bin/python benchmarks/physionet2012_features.py --doc docs/results/physionet2012_features.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pmed.evaluate.cv import make_splits
from pmed.io import write_text_atomic
from pmed.io.jsonio import to_json
from pmed.models.zoo import make_model
from pmed.timeseries.challenge import cross_validate_event1, event1_score

sys.path.insert(0, str(Path(__file__).parent))
from _common import default_out, results_header, run_environment  # noqa: E402
from physionet2012 import LGBM_SMALL_DATA, load_set_a  # noqa: E402

#: normal ranges (low, high) for the ``abnormal`` family
NORMAL = {"HR": (None, 100), "MAP": (65, None), "NIMAP": (65, None), "SysABP": (90, None),
          "NISysABP": (90, None), "RespRate": (None, 24), "Temp": (36, 38), "GCS": (9, None),
          "Lactate": (None, 2), "pH": (7.3, None), "HCO3": (20, None), "BUN": (None, 30),
          "Creatinine": (None, 1.5), "Platelets": (100, None), "WBC": (4, 12), "Na": (135, 145),
          "K": (3.5, 5.0), "Glucose": (None, 200), "SaO2": (92, None), "PaO2": (60, None),
          "Bilirubin": (None, 2), "HCT": (25, None)}
WORST = ["GCS", "HR", "SysABP", "NISysABP", "Temp", "BUN", "Creatinine", "HCO3", "Na", "K", "WBC",
         "Lactate", "pH", "Platelets", "Bilirubin"]


def families(long: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each family's features, one row per stay (``long``: patient_id, time (h), variable, value)."""
    d = long[long["time"] <= 48]
    by = d.groupby("variable")
    var = {v: g for v, g in by}
    empty = d.iloc[:0]
    out: dict[str, dict[str, pd.Series]] = {"abnormal": {}, "urine": {}, "worst24": {}, "care": {}}
    for v, (lo, hi) in NORMAL.items():
        s = var.get(v, empty)
        x = s["value"].to_numpy()
        bad = np.zeros(len(s), bool) | ((x < lo) if lo is not None else False) | ((x > hi) if hi is not None else False)
        out["abnormal"][f"{v}__frac_abnormal"] = pd.Series(bad, index=s["patient_id"]).groupby(level=0).mean()
    w = var.get("Weight", empty).groupby("patient_id")["value"].median()
    w = w.where((w > 30) & (w < 250))  # kg; outside: a unit or typing error
    u = var.get("Urine", empty)
    late = u[u["time"] > 24]
    out["urine"] = {"urine_ml_kg_h_0_48": u.groupby("patient_id")["value"].sum() / w / 48,
                    "urine_ml_kg_h_24_48": late.groupby("patient_id")["value"].sum() / w / 24,
                    "urine_ml_0_24": u[u["time"] <= 24].groupby("patient_id")["value"].sum(),
                    "urine_ml_24_48": late.groupby("patient_id")["value"].sum()}
    for v in WORST:
        s = var.get(v, empty)
        for name, part in (("0_24", s[s["time"] <= 24]), ("24_48", s[s["time"] > 24])):
            g = part.groupby("patient_id")["value"]
            out["worst24"][f"{v}__min_{name}"] = g.min()
            out["worst24"][f"{v}__max_{name}"] = g.max()
    mv = var.get("MechVent", empty).groupby("patient_id")["time"]
    out["care"] = {"mechvent_first_h": mv.min(), "mechvent_records": mv.count(),
                   "n_measurements_0_12": d[d["time"] <= 12].groupby("patient_id")["value"].count(),
                   "n_measurements_36_48": d[d["time"] > 36].groupby("patient_id")["value"].count()}
    return {k: pd.DataFrame(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--doc", type=Path, default=Path("docs/results/physionet2012_features.md"))
    ap.add_argument("--out", type=Path, default=default_out("physionet2012_features"),
                    help="output folder (default out/physionet2012_features)")
    ap.add_argument("--json", type=Path, default=None, help="the numbers (default OUT/results.json)")
    args = ap.parse_args(argv)
    args.json = args.json or args.out / "results.json"
    env = run_environment(["lightgbm"], argv)
    t0 = time.time()
    ts, y, X0 = load_set_a(args.data)
    ids = y.index
    fam = {k: v.reindex(ids) for k, v in families(ts.data).items()}
    sets = {"pmed features": X0} | {f"+ {k}": pd.concat([X0, v], axis=1) for k, v in fam.items()}
    sets["+ all four"] = pd.concat([X0, *fam.values()], axis=1)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name, X in sets.items():
        for seed in seeds:
            splits = make_splits(y.to_numpy(), task="binary", folds=5, seed=seed)
            est = make_model("lightgbm", task="binary", X=X,
                             params={"class_weight": None} | LGBM_SMALL_DATA, seed=0)
            oof = cross_validate_event1(est, X, y, splits, threshold_from="inner_cv",
                                        rules=("batch_prevalence",))
            rows.append({"features": name, "n_features": X.shape[1], "seed": seed,
                         "auroc": float(roc_auc_score(oof["outcome"], oof["prediction"])),
                         "event1": event1_score(oof["outcome"], oof["predicted_batch_prevalence"])["event1"]})
            print(f"[{time.time() - t0:5.0f}s] {name:15s} seed {seed}: AUROC {rows[-1]['auroc']:.4f} "
                  f"Event 1 {rows[-1]['event1']:.4f}", file=sys.stderr, flush=True)
    res = pd.DataFrame(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, to_json({"rows": rows, "seconds": time.time() - t0,
                                          "environment": env}))
    write_text_atomic(args.doc, render(res, seeds, time.time() - t0, argv or sys.argv[1:], env))
    return 0


def render(res: pd.DataFrame, seeds: list[int], seconds: float, argv: list[str],
           env: dict | None = None) -> str:
    lines = [
        "# PhysioNet 2012: feature families beyond pmed's summaries",
        "",
        results_header(env),
        "",
        f"Written by `benchmarks/physionet2012_features.py` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"({seconds / 60:.1f} min on 2 cores). LightGBM with the benchmark's small-data settings through "
        "pmed's pipeline, 5-fold CV on split seeds " + ", ".join(map(str, seeds)) + "; Event 1 by the "
        "batch-prevalence rule. What each family is: see the script's docstring.",
        "",
        "| features | columns | AUROC by seed | mean AUROC | Event 1 by seed | mean Event 1 |",
        "|---|---|---|---|---|---|",
    ]
    for name, g in res.groupby("features", sort=False):
        lines.append(f"| {name} | {g['n_features'].iloc[0]} | {' / '.join(f'{x:.3f}' for x in g['auroc'])} | "
                     f"{g['auroc'].mean():.4f} | {' / '.join(f'{x:.3f}' for x in g['event1'])} | "
                     f"{g['event1'].mean():.4f} |")
    lines += ["", "```bash", ".venv/bin/python benchmarks/physionet2012_features.py " + " ".join(argv), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
