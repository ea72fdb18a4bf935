"""Checks of a treatment column and its outcome before any effect is estimated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pmed.errors import OptionError, ValidationError, shorten

__all__ = ["check_treatment", "MIN_ARM"]

#: fewest patients with an observed outcome an arm may have (cross-fitting splits each arm
#: into folds and fits an outcome model in each)
MIN_ARM = 20


def _show(v) -> str:
    return shorten(str(v), 40)


def check_treatment(treatment: pd.Series, outcome: pd.Series, *, control, source: str | None = None,
                    min_arm: int = MIN_ARM) -> list:
    """The arms to compare with ``control``, after checking the treatment and outcome columns.

    Parameters
    ----------
    treatment, outcome
        Aligned columns (the treatment given, the outcome observed); ``name`` of each is used in
        messages.
    control
        The value of ``treatment`` meaning the control arm.
    source
        The file the columns came from, for messages.
    min_arm
        Fewest patients with an outcome in every arm.

    Returns
    -------
    list
        The other arms, in order of first appearance (each compared with the control).

    Raises
    ------
    ValidationError
        A treatment column with one value, a control value not present, an arm whose outcome is
        missing for every patient, an arm with fewer than ``min_arm`` patients, missing
        treatment values.
    """
    col, out = str(treatment.name or "treatment"), str(outcome.name or "outcome")
    t = pd.Series(treatment)
    if t.isna().any():
        rows = np.flatnonzero(t.isna().to_numpy())[:5] + 2
        raise ValidationError([f"treatment column {_show(col)}: {int(t.isna().sum())} missing value(s) (lines "
                               f"{', '.join(map(str, rows))}{' …' if t.isna().sum() > 5 else ''})"], file=source,
                              fix="record the treatment every patient received, or drop those patients")
    levels = list(pd.unique(t))
    as_str = {str(v): v for v in levels}
    if control not in levels and str(control) in as_str:
        control = as_str[str(control)]
    if len(levels) < 2:
        raise ValidationError([f"treatment column {_show(col)} has one value ({_show(levels[0]) if levels else 'none'}):"
                               " there is nothing to compare"], file=source,
                              fix="give a column with a control arm and at least one treated arm")
    if control not in levels:
        raise ValidationError([f"treatment column {_show(col)}: the control value {_show(control)} is not present"],
                              file=source, fix=f"set treatment.control to one of: "
                                               f"{', '.join(_show(v) for v in levels[:10])}")
    y = pd.Series(outcome)
    for arm in levels:
        have = int(y[(t == arm).to_numpy()].notna().sum())
        if have == 0:
            raise ValidationError([f"outcome {_show(out)} is missing for every patient of arm {_show(arm)} of "
                                   f"{_show(col)}"], file=source,
                                  fix="an arm without outcomes cannot be compared: drop the arm or fill its outcomes")
        if have < min_arm:
            raise ValidationError([f"arm {_show(arm)} of {_show(col)} has {have} patient(s) with an outcome, "
                                   f"fewer than {min_arm}"], file=source,
                                  fix="merge it with a similar arm or drop it: its effect cannot be estimated")
    return [a for a in levels if a != control]


def known_propensity(propensity, arms: list, control) -> dict:
    """P(arm | arm or control) for each arm from a trial's allocation probabilities.

    ``propensity`` is a number (each arm's allocation probability, the control's included:
    equal allocation) or a mapping arm → probability (the control's included).
    """
    if isinstance(propensity, dict):
        probs = {str(k): float(v) for k, v in propensity.items()}
        missing = [a for a in [control, *arms] if str(a) not in probs]
        if missing:
            raise OptionError(f"treatment.propensity has no probability for arm(s) {', '.join(map(_show, missing))}",
                              fix="give every arm's allocation probability, the control's included")
        p = {a: probs[str(a)] for a in [control, *arms]}
    else:
        p = {a: float(propensity) for a in [control, *arms]}
    bad = [a for a, v in p.items() if not 0 < v < 1]
    if bad:
        raise OptionError(f"treatment.propensity of arm {_show(bad[0])} must be in (0, 1), got {p[bad[0]]}",
                          fix="give allocation probabilities, e.g. propensity: 0.5 for a 1:1 trial")
    return {a: p[a] / (p[a] + p[control]) for a in arms}
