"""A study's treatment section: effects/ written beside the prediction model; its keys checked."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import write_trial
from pmed.errors import StudyError
from pmed.study import run_study
from pmed.study.spec import load_study

pytest.importorskip("econml")


def _trial(tmp_path, *, extra: str = "", n: int = 400) -> object:
    """The new drug helps marker carriers only (logit +2), the old one nobody (conftest.write_trial)."""
    return write_trial(tmp_path, n=n, extra=extra)


def test_treatment_section_writes_effects_and_finds_the_modifier(tmp_path):
    study = load_study(_trial(tmp_path, extra="effect_models: [t_learner]\n"))
    res = run_study(study, tmp_path / "out")
    eff = json.loads((tmp_path / "out" / "effects" / "metrics.json").read_text())
    new = eff["arms"]["new"]
    assert new["ate"]["ci_low"] > 0  # the new drug helps on average
    by = new["subgroups"]["marker"]
    assert by["1"]["ci_low"] > by["0"]["ci_high"]  # …and carriers far more than the others
    assert by["0"]["ci_low"] < 0 < by["0"]["ci_high"]
    assert res.metrics["effects"]["ate"]["new"]["estimate"] == pytest.approx(new["ate"]["estimate"])
    cate = pd.read_csv(tmp_path / "out" / "effects" / "cate_oof.csv")
    # the bundle's treatment options model is always checked out of fold beside the chosen learners
    assert len(cate) == 800 and set(cate["learner"]) == {"t_learner", "linear_t_learner"}
    # the learner ranks carriers first: its targeting curve lies above a random ranking
    assert new["learners"]["t_learner"]["autoc"]["estimate"] > 0


@pytest.mark.parametrize(("extra", "says"), [
    ("effect_models: [magic]\n", "unknown effect model 'magic'"),
])
def test_treatment_keys_are_checked(tmp_path, extra, says):
    with pytest.raises(StudyError, match=says):
        load_study(_trial(tmp_path, extra=extra))


def test_treatment_needs_a_trial_for_a_known_propensity_and_no_survival_target(tmp_path):
    p = _trial(tmp_path)
    text = p.read_text()
    p.write_text(text.replace("randomized: true, ", ""))
    with pytest.raises(StudyError, match="set randomized: true"):
        load_study(p)
    p.write_text(text.replace("effect_models", "x") + "effect_models: [t_learner]\n")
    assert load_study(p).effect_models == ["t_learner"]
    p.write_text(text.replace("treatment: {column: drug", "treatment: {column: response"))
    with pytest.raises(StudyError, match="is the target"):
        load_study(p)
    q = tmp_path / "s.yaml"
    q.write_text("name: s\ndata: {patients: patients.csv}\ntarget: {task: survival, time: age, event: marker, "
                 "horizons: [50]}\ntreatment: {column: drug, control: old}\n")
    # a survival target is taken (effects on the risk of the event by a horizon): an event is bad
    assert load_study(q).treatment.higher_is_better is False
