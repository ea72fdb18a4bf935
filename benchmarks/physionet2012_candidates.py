"""PhysioNet 2012: which models and averages of models raise Event 1? (the model choice, on record)

Cross-validates candidate models on split seeds 0-3 of set A (5-fold, stratified) and reports,
for each candidate and for averages of their out-of-fold probabilities, Event 1 by the
batch-prevalence rule (flag the training fold's death rate among the test fold's predictions)
and AUROC, per seed and on average. ``benchmarks/physionet2012.py`` took its extra models from
this table; the Event 1 target is then judged on split seeds 4-7, which no candidate saw.

Candidates (pmed's study pipeline for the tabular ones, ``class_weight=None``):

- ``lgbm_s0`` … ``lgbm_s4``: LightGBM with the benchmark's small-data settings, five seeds;
- ``lgbm_xt``: the same with extremely randomized splits (``extra_trees``, 1,000 trees);
- ``lgbm_cs15``, ``lgbm_lr01``, ``lgbm_mcs80``: 15 % of columns per tree; learning rate 0.01 with
  1,400 trees; 80 samples and 15 leaves per leaf/tree;
- ``linear_C…``: L2 logistic regression with stronger penalties than pmed's default C = 1;
- ``grud_i0`` … ``grud_i2``: GRU-D on the 2-hourly grid, three initialisations (each also holds
  out a different 20 % for early stopping); ``grud_1h``: GRU-D on an hourly grid.

Out-of-fold predictions are cached per candidate and seed in ``--cache`` (a rerun resumes);
two seeds run at a time. Writes ``--doc``. Run from the repository root (about 40 min on 2 cores)::

    .venv/bin/python benchmarks/physionet2012_candidates.py --doc docs/results/physionet2012_candidates.md
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
from pmed.io import write_table, write_text_atomic
from pmed.models.zoo import make_model
from pmed.timeseries import to_grid
from pmed.timeseries.challenge import cross_validate_event1, event1_score, flag_top_share
from pmed.timeseries.grud import GRUDClassifier

sys.path.insert(0, str(Path(__file__).parent))
from _common import default_out, results_header, run_environment  # noqa: E402
from physionet2012 import LGBM_SMALL_DATA, LGBM_XT, load_set_a, static_columns  # noqa: E402

TABULAR = {f"lgbm_s{i}": ("lightgbm", LGBM_SMALL_DATA, i) for i in range(5)} | {
    "lgbm_xt": ("lightgbm", LGBM_XT, 0),
    "lgbm_cs15": ("lightgbm", LGBM_SMALL_DATA | {"colsample_bytree": 0.15}, 0),
    "lgbm_lr01": ("lightgbm", LGBM_SMALL_DATA | {"learning_rate": 0.01, "n_estimators": 1400}, 0),
    "lgbm_mcs80": ("lightgbm", LGBM_SMALL_DATA | {"min_child_samples": 80, "num_leaves": 15}, 0),
} | {f"linear_C{c}": ("linear", {"C": c}, 0) for c in (0.003, 0.01, 0.03)}
GRUD = {f"grud_i{i}": (2.0, i) for i in range(3)} | {"grud_1h": (1.0, 0)}
LGBM5 = [f"lgbm_s{i}" for i in range(5)]
GRUD3 = [f"grud_i{i}" for i in range(3)]
#: averages: each inner list is averaged first, then the lists are averaged with equal weight
AVERAGES = {
    "lgbm_s0..s4": [LGBM5],
    "lgbm_xt + 4 variants": [["lgbm_s0", "lgbm_xt", "lgbm_cs15", "lgbm_lr01", "lgbm_mcs80"]],
    "grud_i0..i2": [GRUD3],
    "lgbm_s0 + grud_i0": [["lgbm_s0"], ["grud_i0"]],
    "lgbm_s0 + grud_i0..i2": [["lgbm_s0"], GRUD3],
    "lgbm_s0..s4 + grud_i0..i2": [LGBM5, GRUD3],
    "lgbm_s0..s4 + grud_i0..i2 + grud_1h": [LGBM5, [*GRUD3, "grud_1h"]],
    "lgbm_s0..s4 + grud_i0..i2 + linear_C0.01": [LGBM5, GRUD3, ["linear_C0.01"]],
    "lgbm_s0 + linear_C0.01": [["lgbm_s0"], ["linear_C0.01"]],
    "lgbm_xt + grud_i0": [["lgbm_xt"], ["grud_i0"]],
    "lgbm_xt + grud_i0..i2": [["lgbm_xt"], GRUD3],
}


def run_seed(seed: int, X: pd.DataFrame, grids: dict[float, pd.DataFrame], y: pd.Series, cache: Path) -> None:
    """Fit every candidate on the 5-fold split of ``seed`` and cache its out-of-fold predictions."""
    import torch

    torch.set_num_threads(1)
    splits = make_splits(y.to_numpy(), task="binary", folds=5, seed=seed)
    for name in [*TABULAR, *GRUD]:
        path = cache / f"{name}_seed{seed}.parquet"
        if path.exists():
            continue
        t = time.time()
        if name in TABULAR:
            family, params, model_seed = TABULAR[name]
            est, data = make_model(family, task="binary", X=X, params={"class_weight": None} | params,
                                   seed=model_seed), X
        else:
            step, model_seed = GRUD[name]
            est, data = GRUDClassifier(random_state=model_seed, n_jobs=1), grids[step]
        oof = cross_validate_event1(est, data, y, splits, threshold_from="validation" if name in GRUD
                                    else "inner_cv", rules=("batch_prevalence",))
        write_table(oof, path, index=False)
        print(f"    seed {seed} {name}: {time.time() - t:.0f}s", file=sys.stderr, flush=True)


def score(groups: list[list[str]], seed: int, cache: Path) -> tuple[float, float]:
    """Event 1 (batch-prevalence rule, per test fold) and AUROC of an average of cached predictions."""
    oofs = {n: pd.read_parquet(cache / f"{n}_seed{seed}.parquet").set_index("patient_id")
            for g in groups for n in g}
    first = next(iter(oofs.values()))
    p = np.mean([np.mean([oofs[n].loc[first.index, "prediction"] for n in g], axis=0) for g in groups], axis=0)
    y, fold = first["outcome"].to_numpy(), first["fold"].to_numpy()
    pred = np.zeros(len(y), int)
    for f in np.unique(fold):
        te = fold == f
        pred[te], _ = flag_top_share(p[te], float(y[~te].mean()))
    return event1_score(y, pred)["event1"], float(roc_auc_score(y, p))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--out", "--cache", dest="cache", metavar="DIR", type=Path,
                    default=default_out("physionet2012_candidates"),
                    help="cached out-of-fold predictions (default out/physionet2012_candidates)")
    ap.add_argument("--doc", type=Path, default=Path("docs/results/physionet2012_candidates.md"))
    ap.add_argument("--limit", type=int, default=None, help="read only the first N stays (quick check)")
    args = ap.parse_args(argv)
    env = run_environment(["lightgbm", "torch"], argv)
    t0 = time.time()
    from joblib import Parallel, delayed

    ts, y, X = load_set_a(args.data, limit=args.limit)
    ids = y.index
    static = static_columns(ts.static.loc[ids])
    grids = {step: to_grid(ts.data, step=step, start=0.0, end=48.0, patients=ids).flatten().join(static)
             for step in sorted({s for s, _ in GRUD.values()})}
    seeds = [int(s) for s in args.seeds.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    Parallel(n_jobs=min(2, len(seeds)))(delayed(run_seed)(s, X, grids, y, args.cache) for s in seeds)
    rows = []
    for name, groups in ({n: [[n]] for n in [*TABULAR, *GRUD]} | AVERAGES).items():
        for seed in seeds:
            e1, auc = score(groups, seed, args.cache)
            rows.append({"candidate": name, "seed": seed, "event1": e1, "auroc": auc})
    res = pd.DataFrame(rows)
    write_text_atomic(args.doc, render(res, seeds, time.time() - t0, argv or sys.argv[1:], env))
    print(f"wrote {args.doc} in {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


def render(res: pd.DataFrame, seeds: list[int], seconds: float, argv: list[str],
           env: dict | None = None) -> str:
    order = [*TABULAR, *GRUD, *AVERAGES]
    lines = [
        "# PhysioNet 2012: candidate models for Event 1 (split seeds used for the model choice)",
        "",
        results_header(env),
        "",
        f"Written by `benchmarks/physionet2012_candidates.py` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC "
        f"({seconds / 60:.1f} min on 2 cores, including predictions already cached). 5-fold CV on split seeds "
        + ", ".join(map(str, seeds)) + "; Event 1 by the batch-prevalence rule; averages take the mean "
        "of the members' out-of-fold probabilities (each `a..b` group first). What each candidate is: the "
        "script's docstring. These seeds chose the models of [physionet2012.md](physionet2012.md); the "
        "Event 1 target is judged there on split seeds 4–7.",
        "",
        "| candidate | Event 1 by seed | mean Event 1 | AUROC by seed | mean AUROC |",
        "|---|---|---|---|---|",
    ]
    for name in order:
        g = res[res["candidate"] == name]
        lines.append(f"| {name} | {' / '.join(f'{x:.3f}' for x in g['event1'])} | {g['event1'].mean():.4f} | "
                     f"{' / '.join(f'{x:.3f}' for x in g['auroc'])} | {g['auroc'].mean():.4f} |")
    lines += ["", "```bash", ".venv/bin/python benchmarks/physionet2012_candidates.py " + " ".join(argv), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
