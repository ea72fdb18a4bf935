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
from pmed.io._atomic import write_text_atomic

__all__ = ["FederatedResult", "run_federated", "run_sites", "predict", "split_sites", "STRATEGIES", "MODELS"]

STRATEGIES = ("fedavg", "fedprox")
MODELS = ("logistic", "mlp")
OUTCOME = "_pmed_outcome"


@dataclass
class FederatedResult:
    metrics: dict[str, Any]
    model: dict[str, Any]
    out: Path | None
    #: the global parameters after each round (``record_rounds=True``, local mode), else None
    round_params: list | None = None

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
        if m.get("dp"):
            d = m["dp"]
            lines.append(f"  differential privacy (per site): epsilon {d['epsilon_spent']:.3g} at delta {d['delta']:g} "
                         f"(noise multiplier {d['noise_multiplier']:.3g}, clipping norm {d['clipping_norm']:g})")
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
    dp_delta: float = 1e-5,
    dp_clip: float = 1.0,
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
    record_rounds: bool = False,
    secure_aggregation: bool = False,
    secagg_clip: float = 16.0,
    on_event: Callable[[str], None] | None = None,
    _crash: str | None = None,
) -> FederatedResult:
    """Train ``model`` across the study's sites with Flower (see the module docstring).

    Returns the metrics (per-site AUROC with DeLong CIs on each site's held-out rows; in local
    mode also the AUROC over all held-out rows), the global model (shared encoding +
    parameters, usable with :func:`predict`) and, when ``out`` is given, the folder holding
    ``metrics.json``, ``model.json`` and the Flower processes' logs.

    ``dp_epsilon``: site-level differential privacy of the training rounds (:mod:`pmed.federated.
    privacy`: Flower's server-side fixed clipping of each site's update to ``dp_clip``, Gaussian
    noise set by Opacus' RDP accountant for ``dp_epsilon`` at ``dp_delta`` over ``rounds``).
    ``record_rounds``: keep the global parameters after every round (local mode:
    ``FederatedResult.round_params``, and ``round_params.json`` under ``out``).
    ``secure_aggregation``: the training rounds go through Flower's SecAgg+ (the server sees only
    the sum of masked, quantized updates; parameters must stay within ``±secagg_clip``). It
    cannot be combined with ``dp_epsilon``, whose server-side clipping needs each site's update.
    """
    _check(strategy, model, rounds)
    if superlink is None:
        if not site_column:
            raise OptionError("--site-column is needed to split the study into sites (or give --superlink)")
        study, tables = split_sites(study_path, site_column)
        return run_sites(tables, target=str(study.target.column), rounds=rounds, strategy=strategy, model=model,
                         dp_epsilon=dp_epsilon, dp_delta=dp_delta, dp_clip=dp_clip, out=out,
                         local_steps=local_steps, lr=lr, l2=l2, proximal_mu=proximal_mu, hidden=hidden,
                         test_fraction=test_fraction, seed=study.seed if seed is None else seed,
                         timeout=timeout, round_timeout=round_timeout, min_sites=min_sites,
                         record_rounds=record_rounds, secure_aggregation=secure_aggregation,
                         secagg_clip=secagg_clip, on_event=on_event, _crash=_crash)
    from pmed.study.spec import load_study

    study = load_study(study_path)
    if not n_sites or n_sites < 1:
        raise OptionError("--superlink needs --sites N: how many sites' SuperNodes to wait for")
    exclude = [c for c in [study.data.id, site_column, *study.data.outcomes, *study.features.exclude,
                           study.evaluation.group] if c]
    return _run({}, n_sites=int(n_sites), outcome=str(study.target.column), exclude=exclude,
                target=str(study.target.column), superlink=superlink, rounds=rounds, strategy=strategy,
                model=model, dp_epsilon=dp_epsilon, dp_delta=dp_delta, dp_clip=dp_clip, out=out,
                local_steps=local_steps, lr=lr, l2=l2, proximal_mu=proximal_mu, hidden=hidden,
                test_fraction=test_fraction, seed=study.seed if seed is None else seed, timeout=timeout,
                round_timeout=round_timeout, min_sites=min_sites, record_rounds=record_rounds,
                secure_aggregation=secure_aggregation, secagg_clip=secagg_clip, on_event=on_event,
                _crash=_crash)


def run_sites(tables: dict[str, pd.DataFrame], *, target: str = "outcome", outcome: str = OUTCOME,
              **options: Any) -> FederatedResult:
    """Local mode on tables already split by site: ``{site name: feature columns + outcome column}``.

    ``outcome`` names the 0/1 outcome column of every table; every other column is a feature.
    Each site's table goes only to that site's SuperNode (a file in a private working folder).
    ``options`` are :func:`run_federated`'s (``rounds``, ``strategy``, ``model``, ``seed`` …).
    """
    _check(options.get("strategy", "fedavg"), options.get("model", "logistic"), options.get("rounds", 20))
    if len(tables) < 2:
        raise FederatedError(f"{len(tables)} site(s); federated training needs at least 2")
    for name, t in tables.items():
        if outcome not in t.columns:
            raise OptionError(f"site {name}'s table has no outcome column {outcome!r}")
    if outcome != OUTCOME:
        tables = {k: t.rename(columns={outcome: OUTCOME}) for k, t in tables.items()}
    options.setdefault("seed", 0)
    return _run(tables, n_sites=len(tables), outcome=OUTCOME, exclude=[], target=target, superlink=None,
                **options)


def _check(strategy: str, model: str, rounds: int) -> None:
    if strategy not in STRATEGIES:
        raise OptionError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if model not in MODELS:
        raise OptionError(f"--model must be one of {', '.join(MODELS)}, not {model!r}")
    if rounds < 1 or rounds > 10_000:
        raise OptionError(f"--rounds must be in 1..10000, not {rounds}")
    try:
        import flwr  # noqa: F401
    except ImportError:
        from pmed.errors import MissingDependencyError

        raise MissingDependencyError("flwr", extra="federated", feature="federated training") from None


def _run(tables: dict[str, pd.DataFrame], *, n_sites: int, outcome: str, exclude: list[str], target: str,
         superlink: str | None, rounds: int = 20, strategy: str = "fedavg", model: str = "logistic",
         dp_epsilon: float | None = None, dp_delta: float = 1e-5, dp_clip: float = 1.0,
         out: str | Path | None = None, local_steps: int = 10, lr: float = 0.5, l2: float = 1e-3,
         proximal_mu: float = 0.1, hidden: int = 16, test_fraction: float = 0.3, seed: int = 0,
         timeout: float = 900.0, round_timeout: float = 120.0, min_sites: int = 2,
         record_rounds: bool = False, secure_aggregation: bool = False, secagg_clip: float = 16.0,
         on_event: Callable[[str], None] | None = None, _crash: str | None = None) -> FederatedResult:
    if secure_aggregation and dp_epsilon is not None:
        raise OptionError("--secure-aggregation and --dp-epsilon cannot be combined: Flower's server-side DP "
                          "clips each site's update, which secure aggregation hides from the server; "
                          "choose one")
    if secure_aggregation and n_sites < 3:
        raise OptionError(f"--secure-aggregation needs at least 3 sites ({n_sites} given): with two, each "
                          "site could subtract its own update from the sum and read the other's")
    if not secagg_clip > 0:
        raise OptionError(f"the secure-aggregation clipping range must be > 0, not {secagg_clip}")
    noise = 0.0
    if dp_epsilon is not None:
        from pmed.federated.privacy import noise_multiplier_for

        if not dp_clip > 0:
            raise OptionError(f"--dp-clip must be > 0, not {dp_clip}")
        noise = noise_multiplier_for(dp_epsilon, dp_delta, rounds)
    run_config = {
        "num-sites": int(n_sites), "min-sites": int(min(min_sites, n_sites)), "num-rounds": int(rounds),
        "strategy": strategy, "proximal-mu": float(proximal_mu), "model": model,
        "local-steps": int(local_steps), "lr": float(lr), "l2": float(l2), "hidden": int(hidden),
        "seed": int(seed), "test-fraction": float(test_fraction), "outcome": outcome,
        "exclude": json.dumps(exclude), "round-timeout": float(round_timeout),
        "connect-timeout": float(min(120.0, timeout)), "out-file": "", "record-rounds": bool(record_rounds),
        "dp-noise-multiplier": float(noise), "dp-clip": float(dp_clip),
        "secure-aggregation": bool(secure_aggregation), "secagg-clip": float(secagg_clip),
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
        if dp_epsilon is not None:
            from pmed.federated.privacy import dp_record

            metrics["dp"] = dp_record(dp_epsilon, dp_delta, dp_clip, rounds, noise, len(result["history"]),
                                      len(result["sites"]))
            # the server's own account: the SD it added in the last round (n = the sites still in)
            metrics["dp"]["noise_sd_last_round"] = (result.get("dp") or {}).get("noise_sd_last_round")
        metrics["seconds_total"] = round(time.monotonic() - t0, 2)
        model_doc = {"format": "pmed.federated.model", "model": model, "target": target,
                     "layout": result["layout"], "params": result["params"],
                     "hidden": hidden if model == "mlp" else None}
        round_params = result.get("round_params")
        out_path = None
        if out is not None:
            out_path = Path(out)
            out_path.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out_path / "metrics.json", json.dumps(metrics, indent=2, allow_nan=True))
            write_text_atomic(out_path / "model.json", json.dumps(model_doc))
            if round_params is not None:
                write_text_atomic(out_path / "round_params.json", json.dumps(round_params))
            (out_path / "flower_logs").mkdir(exist_ok=True)
            for p in logs.values():
                if p.exists():
                    shutil.copy(p, out_path / "flower_logs" / p.name)
        return FederatedResult(metrics=metrics, model=model_doc, out=out_path, round_params=round_params)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _metrics(result: dict, tables: dict[str, pd.DataFrame], cfg: dict, seed: int, frac: float) -> dict:
    from pmed.evaluate.discrimination import delong_auc

    warnings = [e for e in result.get("events", []) if "dropped out" in e or "left out" in e]
    metrics = {k: result[k] for k in ("model", "strategy", "proximal_mu", "rounds", "local_steps", "lr", "l2",
                                      "sites", "sites_finished", "per_site", "history", "communication",
                                      "events")}
    metrics["secure_aggregation"] = result.get("secure_aggregation")
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
