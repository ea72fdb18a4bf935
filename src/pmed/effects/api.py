"""``run_effects``: who benefits from which treatment, estimated honestly (the domain contract)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pmed.cohort import Block
from pmed.errors import OptionError, ValidationError, shorten
from pmed.result import DomainResult, make_provenance

__all__ = ["EffectsResult", "run_effects", "DEFAULT_LEARNERS"]

DEFAULT_LEARNERS = ("t_learner", "dr_learner", "causal_forest")


@dataclass
class EffectsResult(DomainResult):
    """Effects of each arm against the control: ``metrics`` (JSON-ready), ``cate`` (one row per
    patient, arm and learner: ``patient_id, arm, learner, cate, ci_low, ci_high``), and per arm
    the tables behind the plots (``tables[arm]``: ``smd``, and per learner ``toc``, ``calibration``)."""

    domain: ClassVar[str] = "effects"
    block_name: ClassVar[str] = "effects"

    metrics: dict[str, Any] = field(default_factory=dict)
    cate: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_block(self) -> Block:
        """Each patient's out-of-fold CATE, a column per arm and learner: ``cate_<arm>_<learner>``."""
        wide = self.cate.pivot_table(index="patient_id", columns=["arm", "learner"], values="cate")
        wide.columns = [f"cate_{a}_{m}" for a, m in wide.columns]
        return Block(wide, dict(self.provenance))

    def summary(self) -> dict[str, Any]:
        return {"control": self.metrics.get("control"),
                "ate": {a: {k: v["ate"][k] for k in ("estimate", "ci_low", "ci_high")}
                        for a, v in self.metrics.get("arms", {}).items()}}

    def _write_files(self, out: Path) -> dict[str, Path]:
        from pmed import plots
        from pmed.io import write_table, write_text_atomic
        from pmed.io.jsonio import to_json
        from pmed.plots.effects import calibration_plot, uplift_plot

        files = {"metrics": write_text_atomic(out / "metrics.json", to_json(self.metrics)),
                 "cate_oof": write_table(self.cate, out / "cate_oof.csv", index=False)}
        (out / "plots").mkdir(exist_ok=True)
        for arm, t in self.tables.items():
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(arm))
            files[f"smd_{safe}"] = write_table(t["smd"], out / f"overlap_smd_{safe}.csv", index=False)
            for learner, lt in t["learners"].items():
                files[f"toc_{safe}_{learner}"] = write_table(lt["toc"], out / f"uplift_{safe}_{learner}.csv",
                                                             index=False)
                files[f"cal_{safe}_{learner}"] = write_table(lt["calibration"],
                                                             out / f"calibration_{safe}_{learner}.csv", index=False)
            files[f"uplift_png_{safe}"] = plots.save(uplift_plot({k: v["toc"] for k, v in t["learners"].items()},
                                                                 title=f"{arm} vs {self.metrics['control']}"),
                                                     out / "plots" / f"uplift_{safe}.png")
            files[f"cal_png_{safe}"] = plots.save(
                calibration_plot({k: v["calibration"] for k, v in t["learners"].items()},
                                 title=f"{arm} vs {self.metrics['control']}"), out / "plots" / f"calibration_{safe}.png")
        return files


def _is_binary(y: pd.Series) -> bool:
    return set(pd.unique(y.dropna())) <= {0, 1}  # True == 1, False == 0


def _within_unit(d: dict) -> None:
    """Cut a normal interval of a difference in probabilities at ±1, saying so in ``method``."""
    if d["ci_low"] < -1 or d["ci_high"] > 1:
        d["ci_low"], d["ci_high"] = max(d["ci_low"], -1.0), min(d["ci_high"], 1.0)
        d["method"] += " (interval cut at ±1, the range of a difference in probabilities)"


def _subgroup_effects(P: pd.DataFrame, columns: Sequence[str], psi: np.ndarray, keep: np.ndarray,
                      level: float) -> dict:
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    out: dict[str, Any] = {}
    for col in columns:
        if col not in P.columns:
            raise OptionError(f"subgroup column {shorten(col)} is not in the patient table",
                              fix="name a column of the patient table")
        levels = {}
        for v in pd.unique(P[col].dropna()):
            m = (P[col] == v).to_numpy() & keep
            if m.sum() < 2:
                continue
            se = psi[m].std(ddof=1) / np.sqrt(m.sum())
            key = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)  # 1.0 (a 0/1 column) → "1"
            levels[key] = {"estimate": float(psi[m].mean()), "ci_low": float(psi[m].mean() - z * se),
                              "ci_high": float(psi[m].mean() + z * se), "n": int(m.sum()),
                              "method": "mean of the doubly robust scores of the subgroup; normal CI"}
        out[str(col)] = levels
    return out


def run_effects(
    patients: pd.DataFrame,
    *,
    treatment: str,
    outcome: str,
    control: Any,
    covariates: Sequence[str] | None = None,
    randomized: bool = False,
    propensity: float | Mapping[str, float] | None = None,
    learners: Sequence[str] = DEFAULT_LEARNERS,
    folds: int = 5,
    seed: int = 0,
    higher_is_better: bool = True,
    overlap: tuple[float, float] = (0.05, 0.95),
    max_propensity_auc: float = 0.95,
    n_boot: int = 200,
    level: float = 0.95,
    subgroups: Sequence[str] = (),
    source: str | Path | None = None,
    effect_scale: str | None = None,
    probability_scale: bool | None = None,
    modifiers: Sequence[str] | None = None,
) -> EffectsResult:
    """Estimate the effect of every arm of ``treatment`` against ``control`` on ``outcome``.

    Parameters
    ----------
    patients
        One row per patient (indexed by patient ID) with the treatment, the outcome and the
        covariates.
    treatment, outcome, control
        The treatment column, the outcome column (0/1 or continuous) and the control's value.
    covariates
        Columns that may modify or confound the effect (default: every other column).
    randomized
        A trial: the propensity is known (``propensity``, each arm's allocation probability, or
        the arms' share of the patients when not given) and no patient is left out for overlap.
        Otherwise the propensity is modelled and patients outside ``overlap`` are left out of the
        ATE and the CATE evaluation, which the overlap report says.
    overlap, max_propensity_auc
        Observational studies: patients whose propensity lies outside ``overlap`` are left out
        (and counted); a propensity that separates the arms with an AUROC of
        ``max_propensity_auc`` or more is refused as no overlap.
    learners
        CATE learners (:data:`pmed.effects.learners.LEARNERS`).
    folds, seed
        Cross-fitting folds (every nuisance and every CATE is predicted out of fold).
    higher_is_better
        Whether a larger outcome is better for the patient (response: yes; an event: no).
    n_boot, level
        Bootstrap resamples of the ranking metrics; confidence level of every interval.
    subgroups
        Columns (e.g. prior therapy, sex) whose levels each get their own ATE: the mean of the
        doubly robust scores of the level's patients, with its normal interval.
    source
        The patient file, for messages and provenance.
    modifiers
        Covariates that may modify the effect: those the CATE learners see (default: every
        covariate). The ATE's outcome and propensity models use every covariate. Pre-specifying
        them, as a trial pre-specifies its subgroups, keeps tens of irrelevant columns (e.g.
        genotypes at null loci) from drowning the modifiers in noise.
    effect_scale
        What the effect is a difference in, recorded as ``metrics["effect_scale"]`` (default:
        "difference in P(<outcome> = 1)" for a 0/1 outcome, else "difference in mean
        <outcome>"). For an outcome made beforehand, e.g. the pseudo-observations of an event
        by a horizon (:func:`pmed.survival.pseudo.pseudo_observations`): "difference in
        P(event by 5 years)".
    probability_scale
        Whether the effect is a difference in probabilities, so that its intervals are cut at
        ±1 (default: whether the outcome is 0/1). ``True`` for pseudo-observations of an event
        indicator, which are continuous but have a probability as their mean.

    Returns
    -------
    EffectsResult

    Raises
    ------
    ValidationError
        Bad treatment or outcome columns (:func:`pmed.effects._data.check_treatment`), or no
        overlap between an arm and the control in an observational study.
    OptionError
        Unknown learners, bad propensities or options.
    """
    from pmed.effects._data import MIN_ARM, check_treatment, known_propensity
    from pmed.effects.estimate import (
        aipw_ate,
        crossfit_nuisance,
        difference_in_means,
        overlap_report,
    )
    from pmed.effects.evaluate import cate_calibration, policy_value, rate
    from pmed.effects.learners import LEARNERS, cate_oof

    unknown = [m for m in learners if m not in LEARNERS]
    if unknown:
        raise OptionError(f"unknown effect model(s) {', '.join(map(repr, unknown))}",
                          fix=f"use among: {', '.join(LEARNERS)}")
    for col in (treatment, outcome):
        if col not in patients.columns:
            raise ValidationError([f"column {shorten(col)} is not in the patient table"], file=source,
                                  fix=f"name one of: {', '.join(map(str, list(patients.columns)[:12]))}")
    if not 2 <= folds <= 20:
        raise OptionError(f"folds must be from 2 to 20, got {folds}", fix="use folds=5")
    src = None if source is None else str(source)
    arms = check_treatment(patients[treatment], patients[outcome], control=control, source=src)
    levels = {str(v): v for v in pd.unique(patients[treatment])}
    control = levels.get(str(control), control)
    covs = list(covariates) if covariates is not None else [c for c in patients.columns if c not in (treatment, outcome)]
    binary = _is_binary(patients[outcome])
    mods = list(modifiers) if modifiers is not None else covs
    unknown = [c for c in mods if c not in covs]
    if unknown:
        raise OptionError(f"effect modifier(s) {', '.join(shorten(str(c)) for c in unknown[:5])} not among the "
                          "covariates", fix="name covariate columns (treatment.modifiers)")
    known = known_propensity(propensity, arms, control) if propensity is not None else None

    metrics: dict[str, Any] = {
        "treatment": treatment, "outcome": outcome, "control": control, "arms": {},
        "outcome_type": "binary" if binary else "continuous", "higher_is_better": higher_is_better,
        "randomized": randomized, "folds": folds, "seed": seed, "n_boot": n_boot, "level": level,
        "effect_scale": effect_scale or (f"difference in P({outcome} = 1)" if binary
                                         else f"difference in mean {outcome}"),
        "learners": {m: {"what": LEARNERS[m][0], "interval": LEARNERS[m][1] or "none"} for m in learners},
        "modifiers": "every covariate" if modifiers is None else list(map(str, mods)),
    }
    cates, tables = [], {}
    for arm in arms:
        rows = patients[treatment].isin([arm, control]).to_numpy() & patients[outcome].notna().to_numpy()
        P = patients.loc[rows]
        X, y = P[covs], P[outcome].astype(float).to_numpy()
        t = (P[treatment] == arm).to_numpy().astype(int)
        if randomized:
            p = known[arm] if known is not None else float(t.mean())
        else:
            p = None
        nu = crossfit_nuisance(X, y, t, binary=binary, folds=folds, seed=seed, propensity=p)
        ov = overlap_report(X, nu, bounds=(0.0, 1.0) if randomized else overlap)
        keep = ov.pop("keep")
        if not randomized and ov["propensity_auc"] >= max_propensity_auc:
            raise ValidationError([f"no overlap between arm {shorten(str(arm))} and control {shorten(str(control))} "
                                   f"of {shorten(treatment)}: the covariates tell the arms apart with AUROC "
                                   f"{ov['propensity_auc']:.3f} (≥ {max_propensity_auc}), so patients like those "
                                   "treated were hardly ever left untreated, or the reverse"], file=src,
                                  fix="restrict the cohort to patients eligible for both, or drop covariates that "
                                      "decide the treatment (e.g. the indication itself)")
        for name, v in (("arm", 1), ("control", 0)):
            if (keep & (t == v)).sum() < MIN_ARM:
                raise ValidationError([f"no overlap between arm {shorten(str(arm))} and control {shorten(str(control))} "
                                       f"of {shorten(treatment)}: {int((keep & (t == v)).sum())} {name} patient(s) have "
                                       f"a propensity within {list(overlap)}"], file=src,
                                      fix="the arms differ too much in their covariates to compare: restrict the "
                                          "cohort to patients eligible for both, or drop covariates that decide "
                                          "the treatment")
        psi = nu.scores()
        arm_metrics = {"n": int(len(t)), "n_arm": int(t.sum()), "n_control": int((1 - t).sum()),
                       "ate": aipw_ate(nu, keep=keep, level=level),
                       "difference_in_means": difference_in_means(y, t, level=level),
                       "overlap": {k: v for k, v in ov.items() if k != "smd"}, "learners": {}}
        arm_metrics["subgroups"] = _subgroup_effects(P, subgroups, psi, keep, level)
        # a difference of two probabilities lies in [−1, 1]; say where a bound was cut
        if binary if probability_scale is None else probability_scale:
            for d in [arm_metrics["ate"], arm_metrics["difference_in_means"],
                      *[g for lv in arm_metrics["subgroups"].values() for g in lv.values()]]:
                _within_unit(d)
        arm_tables: dict[str, Any] = {"smd": ov["smd"], "learners": {}}
        for m in learners:
            c = cate_oof(X[mods], y, t, nu.fold, m, seed=seed, level=level)
            cv, pv = c["cate"].to_numpy()[keep], psi[keep]
            r = rate(cv, pv, higher_is_better=higher_is_better, n_boot=n_boot, seed=seed, level=level)
            cal = cate_calibration(cv, pv, level=level)
            arm_metrics["learners"][m] = {
                "ate": {"estimate": float(np.mean(cv)), "ci_low": float("nan"), "ci_high": float("nan"),
                        "method": "mean of the learner's out-of-fold CATE (no interval: the arm's `ate` is the "
                                  "effect with its interval)"},
                "autoc": r["autoc"], "qini": r["qini"], "auuc": r["auuc"],
                "calibration_slope": cal["slope"],
                "policy": policy_value(cv, pv, higher_is_better=higher_is_better, level=level),
            }
            arm_tables["learners"][m] = {"toc": r["curve"], "calibration": cal["groups"]}
            cates.append(c.reset_index(names="patient_id").assign(arm=arm, learner=m))
        metrics["arms"][str(arm)] = arm_metrics
        tables[str(arm)] = arm_tables
    cate = (pd.concat(cates, ignore_index=True)[["patient_id", "arm", "learner", "cate", "ci_low", "ci_high"]]
            if cates else pd.DataFrame(columns=["patient_id", "arm", "learner", "cate", "ci_low", "ci_high"]))
    prov = make_provenance("effects", inputs={"patients": source},
                           options={"treatment": treatment, "outcome": outcome, "control": str(control),
                                    "randomized": randomized, "learners": list(learners), "folds": folds,
                                    "seed": seed}, libraries=("econml",))
    return EffectsResult(metrics=metrics, cate=cate, tables=tables, provenance=prov)
