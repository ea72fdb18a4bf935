"""Bad inputs (issue #17, item 6) of the survival models (``pmed.survival.models``), API level:
there is no CLI for the models alone. A Cox fit that would not converge (a constant column, a
collinear pair, complete separation) and an outcome without events are each one error whose
first line names the column(s) and the cause, with a ``fix:`` line, and no patient ID; a
non-converged fit is never returned."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from badinput import bad_input

pytest.importorskip("sksurv")
pytest.importorskip("lifelines")

from pmed.errors import PmedError, ValidationError  # noqa: E402
from pmed.models import make_model  # noqa: E402
from pmed.survival.models import CoxPH, make_surv_y  # noqa: E402

IDS = [f"PT-{i:05d}" for i in range(120)]


def _cohort(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Features indexed by patient ID, and an outcome whose hazard rises with age."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    t = rng.exponential(1000 * np.exp(-0.04 * (age - 60))) + 1
    e = rng.random(n) < 0.7
    X = pd.DataFrame({"age": age, "bmi": rng.normal(27, 4, n)}, index=IDS[:n])
    return X, make_surv_y(t, e)


def refused_api(call, *, exc: type[PmedError], says: str) -> str:
    """Assert that ``call()`` raises ``exc`` the way issue #16 asks of a message; return its head.

    One diagnosis line matching ``says`` (case-insensitive) and a ``fix:`` line; no line longer
    than 400 characters; no patient ID.
    """
    with pytest.raises(exc) as err:
        call()
    lines = str(err.value).splitlines()
    head = lines[0]
    assert re.search(says, head, re.IGNORECASE), f"the message does not say {says!r}:\n{err.value}"
    assert len(lines) == 2 and lines[1].startswith("  fix: "), str(err.value)
    assert all(len(ln) <= 400 for ln in lines)
    assert not any(pid in str(err.value) for pid in IDS), str(err.value)
    return head


@bad_input("diagnosis")
def test_cox_constant_column(tmp_path):
    X, y = _cohort()
    X["centre"] = 4.0  # one centre only: its coefficient is not estimable
    refused_api(lambda: make_model("cox", task="survival", X=X).fit(X, y), exc=ValidationError,
                says=r"constant column\(s\) 'centre'.*would not converge")


@bad_input("silent")
def test_cox_collinear_pair(tmp_path):
    X, y = _cohort()
    X["weight_lb"] = X["bmi"] * 2.2 + 1  # a rescaled copy: the likelihood has no unique maximum
    head = refused_api(lambda: CoxPH().fit(X, y), exc=ValidationError,
                       says=r"collinear columns \('bmi', 'weight_lb'\)")
    assert "age" not in head  # only the dependent set is named
    with pytest.raises(ValidationError, match="set a penalizer"):
        CoxPH().fit(X, y)
    # the fix it names works
    assert np.isfinite(CoxPH(penalizer=0.1).fit(X, y).se_).all()


@bad_input("silent")
def test_cox_complete_separation_is_not_returned(tmp_path):
    X, y = _cohort()
    # 1 for exactly the earliest quarter of follow-up times: the coefficient runs off to +inf
    X["early_marker"] = (y["time"] < np.quantile(y["time"], 0.25)).astype(float)
    refused_api(lambda: CoxPH().fit(X, y), exc=ValidationError,
                says=r"'early_marker' has no finite estimate")


@bad_input("diagnosis")
def test_survival_models_no_events(tmp_path):
    X, y = _cohort()
    y["event"] = False  # every patient censored
    for family in ("cox", "coxnet", "rsf", "gbsa", "km"):
        refused_api(lambda f=family: make_model(f, task="survival", X=X).fit(X, y), exc=ValidationError,
                    says=r"column 'event': no events \(all 120 subjects censored\)")
