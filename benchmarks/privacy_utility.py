"""Privacy–utility curve and membership-inference audit of pmed's differentially private families.

For ``dp_logistic`` (objective perturbation) and ``dp_mlp`` (DP-SGD with Opacus) at
ε = 0.1, 0.3, 1, 3, 10, and their non-private counterparts (pmed's ``linear`` logistic regression;
scikit-learn's ``MLPClassifier`` with the same hidden layer), on two data sets:

- the breast cancer example (``examples/breast_cancer.yaml``: 569 aspirates, 30 features);
- PhysioNet/CinC 2012 set A (4,000 ICU stays, in-hospital death) with the 0-48 h features of
  ``benchmarks/physionet2012.py`` (:func:`load_set_a`).

Every model is cross-validated on the same seeded stratified folds, inside pmed's pipeline
(imputation and scaling fitted in each training fold, :func:`pmed.models.make_model`); the
AUROC of the pooled out-of-fold probabilities has a DeLong 95 % CI
(:func:`pmed.evaluate.discrimination.delong_auc`).

Membership-inference audit (Yeom et al., CSF 2018, loss-threshold attack): in each fold, the
attacker scores each row by minus its log-loss under the fold's model; members are the fold's
training rows, non-members its test rows; the attack AUC (0.5: no leak) is averaged over folds.
Beside it, the largest AUC any attack can reach against an (ε, δ)-DP training (the hypothesis-
testing bound TPR ≤ e^ε·FPR + δ and 1 − FPR ≤ e^ε·(1 − TPR) + δ, Kairouz et al. 2015).

The DP noise is seeded (fold number) so that the page can be regenerated; a deployment leaves
``random_state`` unset. Writes ``OUT/results.json`` and the page (``--page``)::

    .venv/bin/python benchmarks/privacy_utility.py --page docs/results/privacy_utility.md
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pmed.evaluate.cv import make_splits
from pmed.evaluate.discrimination import delong_auc
from pmed.io import write_text_atomic
from pmed.io.jsonio import to_json
from pmed.models.zoo import make_model
from pmed.privacy.dp import register_privacy_families

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment, write_page  # noqa: E402

EPSILONS = (0.1, 0.3, 1.0, 3.0, 10.0)
HIDDEN = (32,)
#: DP-SGD settings per data set (fewer, larger batches on PhysioNet to keep the run short)
MLP = {"breast_cancer": {"epochs": 20, "batch_size": 64, "learning_rate": 0.05},
       "physionet2012": {"epochs": 10, "batch_size": 256, "learning_rate": 0.05}}


def load_breast_cancer_xy() -> tuple[pd.DataFrame, pd.Series]:
    from pmed.datasets import load_breast_cancer

    cohort = load_breast_cancer()
    return cohort.patients, cohort.target("malignant").astype(int)


def load_physionet_xy(limit: int | None) -> tuple[pd.DataFrame, pd.Series]:
    from physionet2012 import load_set_a

    _, y, X = load_set_a(limit=limit)
    return X, y.astype(int)


def model(kind: str, eps: float | None, X: pd.DataFrame, dataset: str, seed: int):
    if kind == "logistic":
        if eps is None:
            return make_model("linear", task="binary", X=X, params={"class_weight": None}, seed=seed)
        return make_model("dp_logistic", task="binary", X=X, params={"epsilon": eps, "random_state": seed})
    if eps is None:
        from sklearn.neural_network import MLPClassifier

        pipe = make_model("linear", task="binary", X=X, seed=seed)
        return pipe.set_params(model=MLPClassifier(hidden_layer_sizes=HIDDEN, max_iter=300, random_state=seed))
    return make_model("dp_mlp", task="binary", X=X,
                      params={"epsilon": eps, "random_state": seed, "hidden_layer_sizes": HIDDEN, **MLP[dataset]})


def log_loss_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def auc_bound(eps: float | None, delta: float) -> float:
    """The largest membership-attack AUC against an (ε, δ)-DP training (1 without DP)."""
    if eps is None:
        return 1.0
    f = np.linspace(0, 1, 200_001)
    tpr = np.minimum.reduce([np.ones_like(f), np.exp(eps) * f + delta, 1 - np.exp(-eps) * (1 - delta - f)])
    tpr = np.clip(tpr, 0, 1)
    return float(np.sum((tpr[1:] + tpr[:-1]) / 2 * np.diff(f)))


def run_one(X, y, splits, kind: str, eps: float | None, dataset: str) -> dict:
    yv = y.to_numpy()
    oof = np.full(len(y), np.nan)
    attack, spent, deltas, t0 = [], [], [], time.perf_counter()
    for _, fold, tr, te in splits:
        est = model(kind, eps, X, dataset, seed=fold).fit(X.iloc[tr], yv[tr])
        p_tr = est.predict_proba(X.iloc[tr])[:, 1]
        p_te = est.predict_proba(X.iloc[te])[:, 1]
        oof[te] = p_te
        loss = np.concatenate([log_loss_rows(yv[tr], p_tr), log_loss_rows(yv[te], p_te)])
        member = np.r_[np.ones(len(tr)), np.zeros(len(te))]
        attack.append(roc_auc_score(member, -loss))
        last = est.named_steps["model"]
        if eps is not None:
            spent.append(float(last.epsilon_))
            deltas.append(float(last.delta_))
    auc = delong_auc(yv, oof)
    delta = max(deltas) if deltas else 0.0
    return {"dataset": dataset, "model": kind, "epsilon": eps,
            "epsilon_spent_max": max(spent) if spent else None, "delta": delta if eps is not None else None,
            "auroc": {k: auc[k] for k in ("estimate", "ci_low", "ci_high")},
            "attack_auc": float(np.mean(attack)), "attack_auc_sd": float(np.std(attack, ddof=1)),
            "attack_auc_folds": [float(a) for a in attack],
            "attack_auc_bound": auc_bound(eps, delta), "seconds": time.perf_counter() - t0}


def fmt(m: dict) -> str:
    return f"{m['estimate']:.3f} ({m['ci_low']:.3f} to {m['ci_high']:.3f})"


def render(result: dict, env: dict) -> str:
    rows = result["rows"]
    lines = ["# Differential privacy: the privacy–utility curve and a membership-inference audit", "",
             results_header(env), "",
             f"Run time: {result['seconds'] / 60:.1f} min. "
             f"Folds: {result['folds']}-fold stratified cross-validation (seed 0), the same folds for every "
             "model of a data set. DP noise seeded by fold (reproducible page; a deployment leaves "
             "`random_state` unset, see `pmed.privacy.dp`).", "",
             "Models (pmed's pipeline: median imputation with missingness indicators and standardisation, "
             "fitted inside each training fold, before the model):", "",
             "- **logistic, no DP**: family `linear` (L2 logistic regression, C = 1).",
             "- **dp_logistic**: objective perturbation (Chaudhuri et al. 2011; diffprivlib's vector "
             "mechanism), pure ε-DP (δ = 0); rows clipped to norm √(number of columns), C = 0.1 (the "
             "family's default, chosen after a look at one held-out split of the breast cancer data: an "
             "optimistic choice for that data set).",
             f"- **MLP, no DP**: scikit-learn `MLPClassifier`, hidden layer {HIDDEN}, Adam, up to 300 "
             "iterations.",
             "- **dp_mlp**: the same hidden layer trained by DP-SGD (Opacus, SGD with momentum 0.9, RDP accountant, per-example "
             f"clipping at 1.0, δ = min(1e-5, n^-1.1)); breast cancer {MLP['breast_cancer']}, PhysioNet "
             f"{MLP['physionet2012']} (fewer epochs and larger batches on PhysioNet to keep the run short).", "",
             "AUROC: pooled out-of-fold probabilities, DeLong 95 % CI. Membership-inference audit: "
             "loss-threshold attack (Yeom et al. 2018), members = each fold's training rows, non-members = "
             "its test rows, AUC averaged over folds (0.5 = no leak). *Bound*: the largest AUC any "
             "membership test can reach against an (ε, δ)-DP training (TPR ≤ e^ε·FPR + δ and the "
             "symmetric condition; Kairouz et al. 2015): it is a guarantee about the trained model, "
             "the attack AUC an estimate of what one attack achieves.", ""]
    for ds, title in (("breast_cancer", "Breast cancer (examples/breast_cancer.yaml)"),
                      ("physionet2012", "PhysioNet 2012 set A, 0-48 h features")):
        sub = [r for r in rows if r["dataset"] == ds]
        if not sub:
            continue
        n = result["n"][ds]
        lines += [f"## {title}", "", f"{n['patients']} patients, {n['events']} events, {n['features']} input "
                  "columns.", "",
                  "| model | ε (requested) | ε spent (max over folds) | δ | AUROC (95 % CI) | attack AUC (SD over "
                  "folds) | bound on attack AUC | seconds |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in sub:
            eps = "no DP" if r["epsilon"] is None else f"{r['epsilon']:g}"
            spent = "–" if r["epsilon_spent_max"] is None else f"{r['epsilon_spent_max']:.3f}"
            delta = "–" if r["delta"] is None else f"{r['delta']:.2g}"
            name = {"logistic": "dp_logistic", "mlp": "dp_mlp"}[r["model"]] if r["epsilon"] is not None else \
                {"logistic": "logistic, no DP", "mlp": "MLP, no DP"}[r["model"]]
            lines.append(f"| {name} | {eps} | {spent} | {delta} | {fmt(r['auroc'])} | {r['attack_auc']:.3f} "
                         f"({r['attack_auc_sd']:.3f}) | "
                         f"{r['attack_auc_bound']:.3f} | {r['seconds']:.0f} |")
        lines.append("")
    lines += ["## Reading it", "", result.get("notes", "(no notes)"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out("privacy_utility"))
    ap.add_argument("--page", type=Path, default=None, help="write the results page here")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--datasets", nargs="+", default=["breast_cancer", "physionet2012"])
    ap.add_argument("--limit", type=int, default=None, help="PhysioNet: read only the first LIMIT stays")
    ap.add_argument("--notes", type=Path, default=None, help="a Markdown file for the page's 'Reading it'")
    ap.add_argument("--render-only", action="store_true", help="re-render the page from OUT/results.json")
    args = ap.parse_args(argv)
    env = run_environment(["diffprivlib", "opacus", "torch"], argv)
    import json

    if args.render_only:
        result = json.loads((args.out / "results.json").read_text())
    else:
        register_privacy_families()
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        from sklearn.exceptions import ConvergenceWarning

        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        t0 = time.perf_counter()
        rows, sizes = [], {}
        for ds in args.datasets:
            X, y = load_breast_cancer_xy() if ds == "breast_cancer" else load_physionet_xy(args.limit)
            sizes[ds] = {"patients": int(len(y)), "events": int(y.sum()), "features": int(X.shape[1])}
            print(f"{ds}: {sizes[ds]} ({time.perf_counter() - t0:.0f} s)", flush=True)
            splits = make_splits(y.to_numpy(), task="binary", folds=args.folds, seed=0)
            for kind in ("logistic", "mlp"):
                for eps in (None, *EPSILONS):
                    r = run_one(X, y, splits, kind, eps, ds)
                    rows.append(r)
                    print(f"  {kind:8s} eps={eps}: AUROC {fmt(r['auroc'])}, attack {r['attack_auc']:.3f}, "
                          f"{r['seconds']:.0f} s", flush=True)
        result = {"rows": rows, "n": sizes, "folds": args.folds, "seconds": time.perf_counter() - t0, "env": env}
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "results.json", to_json(result))
    return write_page(result, args, env, render)


if __name__ == "__main__":
    raise SystemExit(main())
