"""``pmed federated run``: a study trained across sites with Flower, each site keeping its rows.

Local mode (the default) simulates the sites on this machine with Flower's real deployment
engine: the study's table is split by ``site_column`` into one file per site in a private
working folder (mode 0700, deleted afterwards), one ``flower-supernode`` process per site is
given only its own file (``--node-config data-path=…``), and a ``flower-superlink`` process
coordinates. Remote mode (``superlink="HOST:PORT"``) submits the same app to an existing
SuperLink whose SuperNodes run at the sites (docs/federated.md); nothing is split here.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import OptionError
from pmed.federated import learners as L
from pmed.federated.launcher import Deployment, FederatedError, app_dir

__all__ = ["FederatedResult", "run_federated", "predict", "split_sites", "STRATEGIES", "MODELS"]

STRATEGIES = ("fedavg", "fedprox")
MODELS = ("logistic", "mlp")
OUTCOME = "_pmed_outcome"


@dataclass
class FederatedResult:
    metrics: dict[str, Any]
    model: dict[str, Any]
    out: Path | None

    def summary(self) -> str:
        m = self.metrics
        lines = [f"federated {m['model']} ({m['strategy']}), {m['rounds']} rounds, "
                 f"{len(m['sites'])} sites, {m['communication']['bytes_total']:,} bytes exchanged"]
        for s, v in m["per_site"].items():
            a = v.get("auroc")
            txt = "n/a" if a is None else f"{a:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
            lines.append(f"  site {s}: AUROC {txt} on {v['n_test']} held-out patients")
        if m.get("pooled"):
            p = m["pooled"]
            lines.append(f"  all sites: AUROC {p['auroc']:.3f} [{p['ci_low']:.3f}, {p['ci_high']:.3f}] "
                         f"on {p['n_test']} held-out patients")
        lines += [f"  note: {e}" for e in m.get("warnings", [])]
        return "\n".join(lines)


def predict(model: dict[str, Any], X: pd.DataFrame) -> np.ndarray:
    """Event probabilities of raw feature rows ``X`` from a saved federated ``model.json`` dict."""
    return L.predict_proba(L.params_from_json(model["params"]), L.encode(X, model["layout"]))


def _label(v: Any) -> str:
    s = str(v)
    if isinstance(v, float) and v.is_integer():
        s = str(int(v))
    return re.sub(r"[^A-Za-z0-9_.-]", "_", s)[:40] or "site"


def split_sites(study_path: str | Path, site_column: str) -> tuple[Any, dict[str, pd.DataFrame]]:
    """The study's rows with an outcome, one feature table (+ outcome column) per site."""
    from pmed.study.run import encode_target, load_cohort
    from pmed.study.spec import load_study

    study = load_study(study_path)
    if study.target.task != "binary":
        raise OptionError(f"federated training handles binary targets (this study's is {study.target.task})")
    cohort = load_cohort(study)
    y = encode_target(cohort.target(study.target.column), task="binary", positive=study.target.positive)
    X = cohort.features(study.features.blocks, include=study.features.include,
                        exclude=study.features.exclude)
    if site_column in cohort.patients.columns:
        site = cohort.patients.loc[X.index, site_column]
    elif site_column in cohort.outcomes.columns:
        site = cohort.outcomes.loc[X.index, site_column]
    else:
        raise OptionError(f"--site-column {site_column!r} is not a column of the study's patient table")
    X = X.drop(columns=[c for c in (site_column, study.evaluation.group) if c and c in X.columns])
    keep = (y.notna() & site.notna()).to_numpy()
    X, y, site = X.loc[keep], y.loc[keep].astype(int), site.loc[keep]
    tables: dict[str, pd.DataFrame] = {}
    for value in sorted(site.unique(), key=str):
        rows = (site == value).to_numpy()
        t = X.loc[rows].reset_index(drop=True)  # no patient IDs in a site's file
        t[OUTCOME] = y.loc[rows].to_numpy()
        name = _label(value)
        if name in tables:
            name = f"{name}_{len(tables)}"
        tables[name] = t
    small = {k: len(t) for k, t in tables.items() if len(t) < L.MIN_SITE_PATIENTS}
    if small:
        raise FederatedError(
            "site(s) with fewer than {} patients: {}".format(
                L.MIN_SITE_PATIENTS, ", ".join(f"{k} ({n})" for k, n in small.items())),
            where=f"--site-column {site_column}",
            fix="merge small sites into a neighbour or leave them out: each site needs at least "
                f"{L.MIN_SITE_PATIENTS} patients")
    if len(tables) < 2:
        raise FederatedError(f"--site-column {site_column!r} has {len(tables)} site(s); federated "
                             "training needs at least 2")
    return study, tables


def run_federated(
    study_path: str | Path,
    *,
    site_column: str | None = None,
    rounds: int = 20,
    strategy: str = "fedavg",
    model: str = "logistic",
    dp_epsilon: float | None = None,
    out: str | Path | None = None,
    superlink: str | None = None,
    n_sites: int | None = None,
    local_steps: int = 10,
    lr: float = 0.5,
    l2: float = 1e-3,
    proximal_mu: float = 0.1,
    hidden: int = 16,
    test_fraction: float = 0.3,
    seed: int | None = None,
    timeout: float = 900.0,
    round_timeout: float = 120.0,
    min_sites: int = 2,
    on_event: Callable[[str], None] | None = None,
    _crash: str | None = None,
) -> FederatedResult:
    """Train ``model`` across the study's sites with Flower (see the module docstring).

    Returns the metrics (per-site AUROC with DeLong CIs on each site's held-out rows; in local
    mode also the AUROC over all held-out rows), the global model (shared encoding +
    parameters, usable with :func:`predict`) and, when ``out`` is given, the folder holding
    ``metrics.json``, ``model.json`` and the Flower processes' logs.
    """
    if strategy not in STRATEGIES:
        raise OptionError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if model not in MODELS:
        raise OptionError(f"--model must be one of {', '.join(MODELS)}, not {model!r}")
    if dp_epsilon is not None:
        raise OptionError("--dp-epsilon: differential privacy for federated runs is not available yet",
                          fix="leave --dp-epsilon out (see docs/federated.md, 'Not yet')")
    if rounds < 1 or rounds > 10_000:
        raise OptionError(f"--rounds must be in 1..10000, not {rounds}")
    try:
        import flwr  # noqa: F401
    except ImportError:
        from pmed.errors import MissingDependencyError

        raise MissingDependencyError("flwr", extra="federated", feature="federated training") from None

    tables: dict[str, pd.DataFrame] = {}
    if superlink is None:
        if not site_column:
            raise OptionError("--site-column is needed to split the study into sites (or give --superlink)")
        study, tables = split_sites(study_path, site_column)
        n_sites = len(tables)
        exclude: list[str] = []
    else:
        from pmed.study.spec import load_study

        study = load_study(study_path)
        if not n_sites or n_sites < 1:
            raise OptionError("--superlink needs --sites N: how many sites' SuperNodes to wait for")
        exclude = [c for c in [study.data.id, site_column, *study.data.outcomes, *study.features.exclude,
                               study.evaluation.group] if c]
    seed = study.seed if seed is None else seed
    run_config = {
        "num-sites": int(n_sites), "min-sites": int(min(min_sites, n_sites)), "num-rounds": int(rounds),
        "strategy": strategy, "proximal-mu": float(proximal_mu), "model": model,
        "local-steps": int(local_steps), "lr": float(lr), "l2": float(l2), "hidden": int(hidden),
        "seed": int(seed), "test-fraction": float(test_fraction),
        "outcome": OUTCOME if superlink is None else str(study.target.column),
        "exclude": json.dumps(exclude), "round-timeout": float(round_timeout),
        "connect-timeout": float(min(120.0, timeout)), "out-file": "",
    }

    work = Path(tempfile.mkdtemp(prefix="pmed-federated-"))  # 0700: the site files are patient data
    t0 = time.monotonic()
    try:
        app = work / "app"
        run_config["out-file"] = str(app / "result.json") if superlink is None else ""
        app_dir(app, run_config)
        with Deployment(work, superlink=superlink) as dep:
            if _crash:
                dep.env["PMED_FEDERATED_CRASH"] = _crash  # test hook, read by the ClientApp
            if superlink is None:
                dep.start_superlink()
                for i, (name, t) in enumerate(tables.items()):
                    folder = work / f"site_{i}"
                    folder.mkdir(mode=0o700)
                    path = folder / "data.parquet"
                    t.to_parquet(path, index=False)
                    dep.start_supernode(f"supernode-{name}", {"site": name, "data-path": str(path)})
            result = dep.run_app(app, timeout=timeout, on_line=on_event)
        logs = {n: p for n, p in dep.logs.items()}
        metrics = _metrics(result, tables, run_config, seed, test_fraction)
        metrics["seconds_total"] = round(time.monotonic() - t0, 2)
        model_doc = {"format": "pmed.federated.model", "model": model, "target": str(study.target.column),
                     "layout": result["layout"], "params": result["params"],
                     "hidden": hidden if model == "mlp" else None}
        out_path = None
        if out is not None:
            out_path = Path(out)
            out_path.mkdir(parents=True, exist_ok=True)
            (out_path / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=True))
            (out_path / "model.json").write_text(json.dumps(model_doc))
            (out_path / "flower_logs").mkdir(exist_ok=True)
            for p in logs.values():
                if p.exists():
                    shutil.copy(p, out_path / "flower_logs" / p.name)
        return FederatedResult(metrics=metrics, model=model_doc, out=out_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _metrics(result: dict, tables: dict[str, pd.DataFrame], cfg: dict, seed: int, frac: float) -> dict:
    from pmed.evaluate.discrimination import delong_auc

    warnings = [e for e in result.get("events", []) if "dropped out" in e or "left out" in e]
    metrics = {k: result[k] for k in ("model", "strategy", "proximal_mu", "rounds", "local_steps", "lr", "l2",
                                      "sites", "sites_finished", "per_site", "history", "communication",
                                      "events")}
    metrics["warnings"] = warnings
    metrics["seconds_flower_run"] = result.get("seconds")
    if tables:  # local mode: the AUROC over every site's held-out rows, from the same split
        ys, ps = [], []
        model = {"layout": result["layout"], "params": result["params"]}
        for name, t in tables.items():
            if name not in result["sites_finished"]:
                continue
            y = t[OUTCOME].to_numpy().astype(int)
            test = L.split_rows(y, frac, seed)
            ys.append(y[test])
            ps.append(predict(model, t.drop(columns=[OUTCOME]).loc[test]))
        y, p = np.concatenate(ys), np.concatenate(ps)
        d = delong_auc(y, p)
        metrics["pooled"] = {"auroc": d["estimate"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                             "n_test": int(len(y)), "n_test_events": int(y.sum()),
                             "sites": list(result["sites_finished"])}
    return metrics
