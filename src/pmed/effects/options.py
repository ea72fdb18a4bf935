"""Each patient's expected outcome under every treatment, with intervals: the ranked options.

:class:`TreatmentOptions` is a T-learner of penalised linear outcome models, one per arm
(logistic regression for a 0/1 outcome, ridge otherwise), on pmed's preprocessing of the
covariates. Its intervals come from a percentile bootstrap: every arm's model is refitted on
resamples of that arm's patients (the arms are resampled separately, as they were allocated
separately), and each resample gives every patient an outcome under every arm, so the effect
against the control and the chance that an arm is the best come from the same resamples.

Why linear models here when the study also fits EconML's learners: the options are what a
clinician sees, so the model behind them must (1) be stored in the bundle without pickled code
(plain arrays beside scikit-learn's preprocessing; skops loads it with a short trusted list),
(2) give an interval for every patient and arm, and (3) be checked out of fold like every other
learner: the study evaluates it as ``linear_t_learner`` (AUTOC, CATE calibration, policy value)
in ``effects/metrics.json``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from pmed.errors import OptionError, ValidationError, shorten

__all__ = ["TreatmentOptions", "OPTION_COLUMNS"]

#: The columns of ``treatment_options.csv`` that come from the model (``pgx_flag`` and
#: ``pgx_guidance`` are added by :func:`pmed.study.predict.treatment_options`).
OPTION_COLUMNS = ["patient_id", "treatment", "outcome", "outcome_low", "outcome_high", "effect", "effect_low",
                  "effect_high", "prob_best", "rank"]


#: inverse penalties tried by the inner cross-validation of each arm's outcome model
C_GRID = np.logspace(-3, 1, 9)


def _choose_C(Z: np.ndarray, y: np.ndarray, *, binary: bool, seed: int) -> float:
    """The inverse penalty of one arm's outcome model, by 5-fold cross-validated log loss (or MSE).

    Most covariates of a clinical cohort modify nobody's response; a fixed weak penalty lets
    their noise swamp the few effect modifiers (on the demo, 240 columns for 500 patients an
    arm: the out-of-fold CATE then ranks patients no better than chance).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if binary:
        from sklearn.linear_model import LogisticRegressionCV

        if len(np.unique(y)) < 2 or min(np.bincount(y.astype(int))) < 5:
            return float(C_GRID[len(C_GRID) // 2])
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        m = LogisticRegressionCV(Cs=C_GRID, cv=cv, scoring="neg_log_loss", solver="newton-cholesky",
                                 max_iter=200, l1_ratios=(0.0,), use_legacy_attributes=False).fit(Z, y)
        return float(np.ravel(m.C_)[0])
    from sklearn.linear_model import RidgeCV

    m = RidgeCV(alphas=1.0 / C_GRID, cv=KFold(5, shuffle=True, random_state=seed)).fit(Z, y)
    return float(1.0 / m.alpha_)


def _linear(binary: bool, C: float):
    """One arm's outcome model; warm-started, so that each bootstrap refit starts from the last
    solution (a resample's optimum lies close to it: a few iterations instead of tens)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    return (LogisticRegression(C=C, solver="newton-cholesky", max_iter=200, warm_start=True) if binary
            else Ridge(alpha=1.0 / C))


def _fit_linear(Z: np.ndarray, y: np.ndarray, *, binary: bool, model) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of one arm's outcome model (a constant where y does not vary)."""
    if binary and len(np.unique(y)) < 2:
        # every patient of the (re)sample had the same outcome: predict it, kept off 0/1 so
        # the logit is finite (half an event of either kind, as in a continuity correction)
        p = (y.sum() + 0.5) / (len(y) + 1.0)
        return np.zeros(Z.shape[1]), float(np.log(p / (1 - p)))
    m = model.fit(Z, y)
    if binary:
        return m.coef_[0].copy(), float(m.intercept_[0])
    return np.asarray(m.coef_, float).ravel().copy(), float(m.intercept_)


class TreatmentOptions(BaseEstimator):
    """Expected outcome of each patient under every arm, with bootstrap intervals.

    Parameters
    ----------
    control
        The control arm's value of the treatment column (effects are against it).
    binary
        0/1 outcome (logistic regression; outcomes are probabilities) or continuous (ridge).
    n_boot
        Bootstrap refits per arm behind the intervals (0: point estimates only).
    level
        Confidence level of the intervals.
    C
        Inverse penalty of the outcome models (on standardised covariates); ``None`` chooses
        it for each arm by 5-fold cross-validation over :data:`C_GRID` (then kept for the
        bootstrap refits).
    seed
        Seed of the bootstrap.
    bounds
        A continuous outcome whose mean lies within bounds (pseudo-observations of an event by a
        horizon: a risk in [0, 1]): the expected outcomes are kept within them.

    Attributes
    ----------
    arms_ : list of str
        The control first, then the other arms in order of appearance.
    encoder_ : sklearn.compose.ColumnTransformer
        pmed's preprocessing of the covariates, fitted on all patients.
    coef_, intercept_ : ndarray
        Each arm's outcome model, ``(n_arms, n_columns)`` and ``(n_arms,)``.
    boot_coef_, boot_intercept_ : ndarray
        The bootstrap refits, ``(n_boot, n_arms, n_columns)`` and ``(n_boot, n_arms)``.
    n_per_arm_ : ndarray
        Patients each arm's model was fitted on.
    C_ : ndarray
        Each arm's inverse penalty.
    feature_names_in_ : ndarray
        The covariates, in order.
    """

    def __init__(self, *, control, binary: bool = True, n_boot: int = 200, level: float = 0.95,
                 C: float | None = None, seed: int = 0, bounds: tuple[float, float] | None = None):
        self.control = control
        self.binary = binary
        self.n_boot = n_boot
        self.level = level
        self.C = C
        self.seed = seed
        self.bounds = bounds

    def fit(self, X: pd.DataFrame, treatment: Sequence, y: Sequence) -> TreatmentOptions:
        """Fit every arm's outcome model and its bootstrap refits.

        Parameters
        ----------
        X
            Covariates (the treatment column excluded).
        treatment, y
            The arm each patient received and their outcome (no missing values).
        """
        from pmed.effects.estimate import encoder

        if not 0 < self.level < 1:
            raise OptionError(f"level must be in (0, 1), got {self.level}")
        if self.n_boot < 0:
            raise OptionError(f"n_boot must be 0 or more, got {self.n_boot}")
        t = np.asarray(pd.Series(treatment).astype(str), dtype=object)
        y = np.asarray(y, dtype=float)
        if len(t) != len(X) or len(y) != len(X):
            raise ValidationError([f"X has {len(X)} rows, treatment {len(t)} and y {len(y)}"])
        if np.isnan(y).any():
            raise ValidationError(["the outcome has missing values"], fix="fit on patients with an outcome")
        control = str(self.control)
        levels = list(dict.fromkeys(t))
        if control not in levels:
            raise ValidationError([f"the control {shorten(control)} is not among the treatments"])
        self.arms_ = [control, *[a for a in levels if a != control]]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.encoder_ = encoder(X).fit(X)
        Z = np.asarray(self.encoder_.transform(X), dtype=float)
        rows = [np.flatnonzero(t == a) for a in self.arms_]
        self.n_per_arm_ = np.array([len(r) for r in rows])
        self.C_ = np.array([self.C if self.C is not None else _choose_C(Z[r], y[r], binary=self.binary, seed=self.seed)
                            for r in rows])
        models = [_linear(self.binary, c) for c in self.C_]
        fits = [_fit_linear(Z[r], y[r], binary=self.binary, model=m) for r, m in zip(rows, models, strict=True)]
        self.coef_ = np.stack([f[0] for f in fits])
        self.intercept_ = np.array([f[1] for f in fits])
        rng = np.random.default_rng(self.seed)
        self.boot_coef_ = np.empty((self.n_boot, len(rows), Z.shape[1]))
        self.boot_intercept_ = np.empty((self.n_boot, len(rows)))
        for b in range(self.n_boot):
            for k, r in enumerate(rows):
                s = rng.choice(r, size=len(r), replace=True)
                self.boot_coef_[b, k], self.boot_intercept_[b, k] = _fit_linear(Z[s], y[s], binary=self.binary,
                                                                                model=models[k])
        return self

    def _link(self, eta: np.ndarray) -> np.ndarray:
        if self.binary:
            return 1.0 / (1.0 + np.exp(-eta))
        return eta if self.bounds is None else np.clip(eta, *self.bounds)

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValidationError([f"missing covariate column(s) of the treatment model: "
                                   f"{', '.join(shorten(str(c)) for c in missing[:8])}"],
                                  fix="give every column the model was trained with")
        return np.asarray(self.encoder_.transform(X[list(self.feature_names_in_)]), dtype=float)

    def predict_outcomes(self, X: pd.DataFrame) -> pd.DataFrame:
        """Expected outcome under every arm: a column per arm (``arms_``), indexed as ``X``."""
        Z = self._encode(X)
        return pd.DataFrame(self._link(Z @ self.coef_.T + self.intercept_), index=X.index, columns=self.arms_)

    def options(self, X: pd.DataFrame, *, higher_is_better: bool = True) -> pd.DataFrame:
        """Every patient's options, one row per patient and arm (:data:`OPTION_COLUMNS`).

        ``outcome`` is the expected outcome under the arm (a probability for a 0/1 outcome),
        ``effect`` the difference from the control's; ``_low``/``_high`` are percentile
        bootstrap intervals at ``level`` (NaN without bootstrap refits). ``prob_best`` is the
        share of the resamples in which the arm has the best expected outcome, and ``rank``
        orders the arms by expected outcome (1 = best; ``higher_is_better`` says which way).
        """
        Z = self._encode(X)
        point = self._link(Z @ self.coef_.T + self.intercept_)  # (n, arms)
        n, k = point.shape
        a = (1 - self.level) / 2
        if self.n_boot:
            boot = self._link(np.einsum("nj,bkj->bnk", Z, self.boot_coef_) + self.boot_intercept_[:, None, :])
            out_lo, out_hi = np.quantile(boot, [a, 1 - a], axis=0)
            eff = boot - boot[:, :, :1]
            eff_lo, eff_hi = np.quantile(eff, [a, 1 - a], axis=0)
            best = boot.argmax(axis=2) if higher_is_better else boot.argmin(axis=2)  # (b, n)
            prob_best = np.stack([(best == j).mean(axis=0) for j in range(k)], axis=1)
        else:
            out_lo = out_hi = eff_lo = eff_hi = prob_best = np.full((n, k), np.nan)
        order = -point if higher_is_better else point
        rank = order.argsort(axis=1, kind="stable").argsort(axis=1) + 1
        effect = point - point[:, :1]
        eff_lo, eff_hi = np.where(np.arange(k) == 0, 0.0, eff_lo), np.where(np.arange(k) == 0, 0.0, eff_hi)
        df = pd.DataFrame({
            "patient_id": np.repeat(np.asarray(X.index, dtype=object), k),
            "treatment": np.tile(np.asarray(self.arms_, dtype=object), n),
            "outcome": point.ravel(), "outcome_low": out_lo.ravel(), "outcome_high": out_hi.ravel(),
            "effect": effect.ravel(), "effect_low": eff_lo.ravel(), "effect_high": eff_hi.ravel(),
            "prob_best": prob_best.ravel(), "rank": rank.ravel(),
        })
        # patients in the order given, each patient's arms best first
        order_rows = np.lexsort((df["rank"].to_numpy(), np.repeat(np.arange(n), k)))
        return df.iloc[order_rows].reset_index(drop=True)

    def effect_interval(self, X: pd.DataFrame, arm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The effect of ``arm`` against the control for every row of ``X``: point, low, high."""
        j = self.arms_.index(str(arm))
        Z = self._encode(X)
        point = self._link(Z @ self.coef_[j] + self.intercept_[j]) - self._link(Z @ self.coef_[0] + self.intercept_[0])
        if not self.n_boot:
            return point, np.full(len(Z), np.nan), np.full(len(Z), np.nan)
        e = (self._link(Z @ self.boot_coef_[:, j].T + self.boot_intercept_[:, j])
             - self._link(Z @ self.boot_coef_[:, 0].T + self.boot_intercept_[:, 0]))  # (n, b)
        a = (1 - self.level) / 2
        lo, hi = np.quantile(e, [a, 1 - a], axis=1)
        return point, lo, hi
