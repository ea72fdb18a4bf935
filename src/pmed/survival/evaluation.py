"""``pmed evaluate --task survival``: every survival metric of a predictions file, then its outputs.

The computation (:func:`evaluate_survival`) is separate from the writing
(:func:`write_survival_evaluation`) and from the plots (:mod:`pmed.plots`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import OptionError, ValidationError, shorten
from pmed.survival import metrics as M
from pmed.survival._data import check_survival_data

__all__ = ["evaluate_survival", "write_survival_evaluation", "surv_columns", "check_survival_options",
           "SCHEMA"]

#: ``metrics.json["schema"]``: the same as the other ``pmed evaluate`` outputs, so that a
#: rerun of ``pmed evaluate`` may replace either
SCHEMA = "pmed.evaluation"

_SURV_COL = re.compile(r"^surv_(.+)$")
_NEEDS_SURV = ("brier", "ibs", "calibration", "decision_curve")


def surv_columns(columns: Sequence[str]) -> dict[float, str]:
    """Map horizon → column for the ``surv_<t>`` columns of a predictions table."""
    out = {}
    for c in columns:
        m = _SURV_COL.match(str(c))
        if m:
            try:
                out[float(m.group(1))] = str(c)
            except ValueError:
                continue
    return out


def check_survival_options(*, horizons: Sequence[float] = (), tau: float | None = None,
                           n_boot: int = 200, seed: int = 0) -> None:
    """Refuse bad option values before any data is read."""
    for h in horizons:
        if not (np.isfinite(h) and h > 0):
            raise OptionError(f"--horizon must be a positive number, got {shorten(h)}",
                              fix="give horizons in the unit of the time column, e.g. --horizon 365")
    if tau is not None and not (np.isfinite(tau) and tau > 0):
        raise OptionError(f"--tau must be a positive number, got {shorten(tau)}",
                          fix="give Uno's truncation time in the unit of the time column, e.g. --tau 365")
    if n_boot < 0:
        raise OptionError(f"n_boot must be >= 0, got {n_boot}", fix="use 0 for no bootstrap")
    if seed < 0:
        raise OptionError(f"seed must be >= 0, got {seed}", fix="use e.g. 0")


def evaluate_survival(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    score: str,
    horizons: Sequence[float] = (),
    tau: float | None = None,
    n_boot: int = 200,
    seed: int = 0,
    source: str | None = None,
    calibration_boot: int | None = None,
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Evaluate survival predictions: concordance, td-AUC, Brier, calibration, decision curve.

    Parameters
    ----------
    df
        Predictions table with the time, event and score columns and optionally ``surv_<t>``.
    time, event
        Follow-up time (> 0) and event (1 event, 0 censored) columns.
    score
        Risk score column, higher = worse (shorter survival).
    horizons
        Horizons for td-AUC, Brier score, calibration and the decision curve (the first one).
        Default: the horizons of the ``surv_<t>`` columns, if any.
    tau
        Truncation time of Uno's C; default the largest horizon (none without horizons).
    n_boot, seed
        Bootstrap resamples and seed of the bootstrap intervals.
    source
        File name for messages.
    calibration_boot
        Bootstrap resamples of the calibration intervals (ICI, E50, E90), default ``n_boot``.
        Each resample refits a Cox calibration model per horizon, by far the slowest part:
        ``pmed run`` passes 0 for the candidate models and bootstraps the selected one only.

    Returns
    -------
    (dict, dict)
        ``metrics`` (``harrell_c, uno_c, td_auc, brier, ibs, calibration, notes`` …) and the
        tables ``calibration`` and ``decision_curve`` (empty when not computed).
    """
    check_survival_options(horizons=horizons, tau=tau, n_boot=n_boot, seed=seed)
    if calibration_boot is not None and calibration_boot < 0:
        raise OptionError(f"calibration_boot must be >= 0, got {calibration_boot}", fix="use 0 for no bootstrap")
    missing = [c for c in (time, event, score) if c not in df.columns]
    if missing:
        raise ValidationError([f"column {c!r} not found" for c in missing], file=source,
                              fix=f"columns in the file: {', '.join(shorten(c, 30) for c in df.columns[:20])}"
                                  f"{' …' if df.shape[1] > 20 else ''}")
    t, e = check_survival_data(df[time], df[event], source=source, time_col=time, event_col=event)
    x = pd.to_numeric(df[score], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(x)
    if bad.any():
        from pmed.errors import format_rows

        raise ValidationError([f"column {score!r}: missing or non-numeric risk score at lines "
                               f"{format_rows((np.flatnonzero(bad) + 2).tolist())}"], file=source,
                              fix="give every subject a numeric risk score (higher = worse)")
    scols = surv_columns(df.columns)
    hs = sorted({float(h) for h in horizons}) if horizons else sorted(scols)
    hs = M.check_horizons(t, e, hs, source=source, time_col=time)
    if tau is None and hs:
        tau = max(hs)

    notes: list[str] = []
    out: dict = {"schema": SCHEMA, "task": "survival", "n": int(len(t)), "events": int(e.sum()),
                 "time": time, "event": event, "score": score, "horizons": hs,
                 "sign_convention": "risk higher = worse (shorter survival)"}
    out["harrell_c"] = M.harrell_c(t, e, x)
    out["uno_c"] = M.uno_c(t, e, x, tau=tau)
    out["td_auc"] = M.td_auc(t, e, x, hs, n_boot=n_boot, seed=seed) if hs else {}
    if not hs:
        notes.append("no horizon given and no surv_<t> columns: td_auc, brier, ibs, calibration and the "
                     "decision curve need --horizon")

    have = [h for h in hs if h in scols]
    lacking = [h for h in hs if h not in scols]
    if lacking:
        notes.append(f"no surv_<t> column for horizon(s) {', '.join(map(M._key, lacking))}: "
                     f"{', '.join(_NEEDS_SURV)} need predicted survival probabilities and were skipped there "
                     "(add columns surv_<t> = P(event-free at t))")
    surv = None
    if have:
        surv = np.column_stack([pd.to_numeric(df[scols[h]], errors="coerce").to_numpy(dtype=float)
                                for h in have])
        bad = ~np.isfinite(surv) | (surv < 0) | (surv > 1)
        if bad.any():
            from pmed.errors import format_rows

            j = int(np.flatnonzero(bad.any(axis=0))[0])
            raise ValidationError([f"column {scols[have[j]]!r}: survival probabilities must be numbers in [0, 1], "
                                   f"bad at lines {format_rows((np.flatnonzero(bad[:, j]) + 2).tolist())}"],
                                  file=source, fix="give S(t) = P(event-free at t), not a risk or a percentage")
    out["brier"] = M.brier(t, e, surv, have, n_boot=n_boot, seed=seed) if have else {}
    if len(have) >= 2:
        out["ibs"] = M.integrated_brier(t, e, surv, have, n_boot=n_boot, seed=seed)
    else:
        out["ibs"] = None
        notes.append("ibs needs surv_<t> columns at two or more horizons; skipped")
    out["calibration"] = {}
    cal_tables = []
    for j, h in enumerate(have):
        summary, table = M.calibration_at(t, e, surv[:, j], h, seed=seed,
                                          n_boot=n_boot if calibration_boot is None else calibration_boot)
        out["calibration"][M._key(h)] = summary
        cal_tables.append(table.assign(horizon=h))
    tables: dict[str, pd.DataFrame] = {
        "calibration": (pd.concat(cal_tables, ignore_index=True) if cal_tables else pd.DataFrame()),
    }
    if have:
        dca = M.decision_curve(t, e, surv[:, 0], have[0])
        out["decision_curve"] = {"horizon": have[0], "prevalence": dca.attrs["prevalence"],
                                 "method": "net benefit with Kaplan–Meier event probabilities (Vickers 2008)"}
        tables["decision_curve"] = dca
    else:
        tables["decision_curve"] = pd.DataFrame()
    out["notes"] = notes
    return out, tables


def write_survival_evaluation(metrics: dict, tables: dict[str, pd.DataFrame], out_dir: str | Path) -> dict[str, Path]:
    """Write ``metrics.json``, ``calibration_curve.csv``, ``decision_curve.csv`` and PNG plots."""
    from pmed.io.jsonio import to_json
    from pmed.plots import calibration_plot, decision_curve_plot, save

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out_dir / "metrics.json"}
    paths["metrics"].write_text(to_json(metrics), encoding="utf-8")
    cal = tables.get("calibration", pd.DataFrame())
    if not cal.empty:
        paths["calibration_curve"] = out_dir / "calibration_curve.csv"
        cal.to_csv(paths["calibration_curve"], index=False)
        h = cal["horizon"].iloc[0]
        fig = calibration_plot(cal[cal["horizon"] == h].drop(columns="horizon"),
                               title=f"Calibration at t = {h:g}", label="model")
        paths["calibration_plot"] = save(fig, out_dir / "calibration.png")
    dca = tables.get("decision_curve", pd.DataFrame())
    if not dca.empty:
        paths["decision_curve"] = out_dir / "decision_curve.csv"
        dca.to_csv(paths["decision_curve"], index=False)
        fig = decision_curve_plot(dca, title=f"Decision curve at t = {dca.attrs.get('horizon', float('nan')):g}")
        paths["decision_curve_plot"] = save(fig, out_dir / "decision_curve.png")
    return paths
