"""Conditional average treatment effects (CATE) by EconML's learners, predicted out of fold.

Each learner is fitted on the training folds of the patients of one arm and the control, and
predicts the effect of the arm for the held-out fold, so that the CATE of every patient comes
from a model that never saw them: the predictions the uplift, calibration and policy checks of
:mod:`pmed.effects.evaluate` need. Covariates are encoded by pmed's preprocessing fitted on the
training folds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.errors import OptionError, require

__all__ = ["LEARNERS", "cate_oof", "make_learner"]

#: learner → (what it is, how its interval is made)
LEARNERS = {
    "s_learner": ("S-learner: one outcome model with the treatment as a feature (EconML SLearner)", None),
    "t_learner": ("T-learner: an outcome model per arm (EconML TLearner)", None),
    "x_learner": ("X-learner: imputed effects regressed per arm, weighted by the propensity (EconML XLearner)",
                  None),
    "dr_learner": ("DR-learner: doubly robust pseudo-outcomes regressed on the covariates (EconML DRLearner)",
                   None),
    "causal_forest": ("causal forest with orthogonalised outcome and treatment (EconML CausalForestDML)",
                      "bootstrap of little bags (EconML CausalForestDML.effect_interval)"),
    "linear_t_learner": ("T-learner of penalised linear outcome models per arm (pmed TreatmentOptions: the model "
                         "behind each patient's treatment options in a bundle)",
                         "percentile bootstrap of each arm's outcome model, arms resampled apart (100 refits out "
                         "of fold; 200 in a bundle)"),
}
#: learners pmed fits itself rather than through EconML
_NATIVE = ("linear_t_learner",)


def _regressor(seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.05, min_samples_leaf=20, random_state=seed)


def _classifier(seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000)


def make_learner(name: str, *, seed: int = 0, binary: bool = False):
    """The estimator behind ``name`` (see :data:`LEARNERS`): EconML's, or pmed's for ``linear_t_learner``
    (which needs ``binary``: logistic or ridge outcome models)."""
    if name not in LEARNERS:
        raise OptionError(f"unknown effect model {name!r}", fix=f"use among: {', '.join(LEARNERS)}")
    if name == "linear_t_learner":
        from pmed.effects.options import TreatmentOptions

        return TreatmentOptions(control="0", binary=binary, seed=seed, n_boot=100)
    require("econml", extra="effects", feature="treatment-effect learners")
    if name == "s_learner":
        from econml.metalearners import SLearner

        return SLearner(overall_model=_regressor(seed))
    if name == "t_learner":
        from econml.metalearners import TLearner

        return TLearner(models=_regressor(seed))
    if name == "x_learner":
        from econml.metalearners import XLearner

        return XLearner(models=_regressor(seed), propensity_model=_classifier(seed))
    if name == "dr_learner":
        from econml.dr import DRLearner

        return DRLearner(model_propensity=_classifier(seed), model_regression=_regressor(seed),
                         model_final=_regressor(seed), cv=3, random_state=seed)
    from econml.dml import CausalForestDML

    return CausalForestDML(model_y=_regressor(seed), model_t=_classifier(seed), discrete_treatment=True,
                           n_estimators=200, min_samples_leaf=10, cv=3, random_state=seed)


def cate_oof(X: pd.DataFrame, y: np.ndarray, t: np.ndarray, fold: np.ndarray, learner: str, *, seed: int = 0,
             level: float = 0.95) -> pd.DataFrame:
    """Out-of-fold CATE of one learner for the patients of an arm and the control.

    Parameters
    ----------
    X, y, t
        Covariates, outcome and treatment (1 arm, 0 control).
    fold
        The cross-fitting fold of each patient (:class:`pmed.effects.estimate.Nuisance`).
    learner
        A key of :data:`LEARNERS`.

    Returns
    -------
    pandas.DataFrame
        Indexed as ``X``: ``cate``, ``ci_low``, ``ci_high`` (NaN for learners without an
        interval; see :data:`LEARNERS`).
    """
    import warnings

    from pmed.effects.estimate import encoder

    out = pd.DataFrame({"cate": np.nan, "ci_low": np.nan, "ci_high": np.nan}, index=X.index)
    binary = bool(set(np.unique(y)) <= {0.0, 1.0})
    has_interval = LEARNERS[learner][1] is not None
    for k in np.unique(fold):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        enc = encoder(X).fit(X.iloc[tr])
        Ztr, Zte = np.asarray(enc.transform(X.iloc[tr]), float), np.asarray(enc.transform(X.iloc[te]), float)
        if learner in _NATIVE:  # encodes the covariates itself, fitted on the training folds
            est = make_learner(learner, seed=seed, binary=binary)
            est.set_params(level=level).fit(X.iloc[tr], t[tr].astype(str), y[tr])
            eff, lo, hi = est.effect_interval(X.iloc[te], "1")
            out.iloc[te, 0], out.iloc[te, 1], out.iloc[te, 2] = eff, lo, hi
            continue
        est = make_learner(learner, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EconML's notices on co-linearity and defaults
            est.fit(y[tr], t[tr], X=Ztr)
            out.iloc[te, 0] = np.ravel(est.effect(Zte))
            if has_interval:
                lo, hi = est.effect_interval(Zte, alpha=1 - level)
                out.iloc[te, 1], out.iloc[te, 2] = np.ravel(lo), np.ravel(hi)
    return out
