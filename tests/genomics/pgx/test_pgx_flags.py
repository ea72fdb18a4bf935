"""The pgx_flag beside each treatment option: the action of CPIC/DPWG's own recommendation texts."""

from __future__ import annotations

import pandas as pd
import pytest

from pmed.genomics.pgx.flags import FLAGS, action_flag, pgx_flags
from pmed.genomics.pgx.phenotype import phenotype_for
from pmed.genomics.pgx.recommend import recommend


def _flags(gene, diplotype, drug):
    """Flag of every recommendation (package data: CPIC and DPWG) for one diplotype and drug, by source."""
    recs = [r for r in recommend({gene: [phenotype_for(gene, diplotype)]}) if r.drug == drug]
    assert recs, (gene, diplotype, drug)
    out: dict[str, set] = {}
    for r in recs:
        out.setdefault(r.source, set()).add(action_flag(r.text))
    return out


@pytest.mark.parametrize(("gene", "diplotype", "drug", "cpic", "dpwg"), [
    # CPIC 2022 clopidogrel: poor metabolizers avoid it; DPWG: choose an alternative
    ("CYP2C19", ("*2", "*2"), "clopidogrel", {"avoid"}, {"avoid"}),
    ("CYP2C19", ("*1", "*2"), "clopidogrel", {"avoid", "alternative", "no recommendation"}, {"alternative"}),
    ("CYP2C19", ("*1", "*1"), "clopidogrel", {"standard"}, {"no recommendation"}),
    # CPIC DPYD: reduce the starting dose by 50 %
    ("DPYD", ("Reference", "c.1905+1G>A (*2A)"), "capecitabine", {"dose change"}, None),
    # CPIC statins 2022: SLCO1B1 poor function, simvastatin: prescribe an alternative statin
    ("SLCO1B1", ("*5", "*5"), "simvastatin", {"alternative"}, None),
])
def test_flags_of_guideline_texts(gene, diplotype, drug, cpic, dpwg):
    got = _flags(gene, diplotype, drug)
    assert got["CPIC"] == cpic
    if dpwg is not None:
        assert got["DPWG"] == dpwg


@pytest.mark.parametrize(("text", "flag"), [
    ("Avoid standard dose (75 mg) clopidogrel if possible. Use prasugrel or ticagrelor at standard dose.", "avoid"),
    ("If considering clopidogrel, use at standard dose (75 mg/day)  Other Considerations  avoid in …", "standard"),
    ("Prescribe desired starting dose and adjust doses based on disease-specific guidelines.", "standard"),
    ("Prescribe ≤40mg per day as a starting dose and adjust doses of fluvastatin based on disease-specific "
     "guidelines.", "dose change"),
    ("Do not exceed the following daily doses:  Adults up to 65 years: 30mg", "dose change"),
    ("Monitor the plasma concentration.", "monitor"),
    ("The guideline does not provide a recommendation for clopidogrel in normal metabolizers.", "no recommendation"),
    ("NO action is required for this gene-drug interaction.", "standard"),
])
def test_action_flag_reads_the_first_sentence_and_not_the_other_considerations(text, flag):
    assert action_flag(text) == flag


def test_most_severe_flag_per_patient_and_drug_with_its_sentence_per_source():
    recs = pd.DataFrame({
        "sample": ["A", "A", "A", "B"],
        "drug": ["clopidogrel", "clopidogrel", "Clopidogrel", "clopidogrel"],
        "source": ["CPIC", "CPIC", "DPWG", "CPIC"],
        "recommendation": ["No recommendation", "Avoid standard dose (75 mg) clopidogrel if possible. More.",
                           "choose an alternative or double the dose to 150 mg/day.",
                           "If considering clopidogrel, use at standard dose (75 mg/day)"],
    })
    f = pgx_flags(recs, ["A", "B", "C"], ["clopidogrel", "ticagrelor"]).set_index(["patient_id", "treatment"])
    assert f.loc[("A", "clopidogrel"), "pgx_flag"] == "avoid"
    assert f.loc[("A", "clopidogrel"), "pgx_guidance"] == (
        "CPIC: Avoid standard dose (75 mg) clopidogrel if possible. | DPWG: choose an alternative or double the "
        "dose to 150 mg/day.")
    assert f.loc[("B", "clopidogrel"), "pgx_flag"] == "standard"
    assert f.loc[("A", "ticagrelor"), "pgx_flag"] == "no guideline"  # no CPIC/DPWG guideline for the drug
    assert f.loc[("C", "clopidogrel"), "pgx_flag"] == "no guideline"  # a patient without recommendations
    none = pgx_flags(None, ["A"], ["clopidogrel"])
    assert none["pgx_flag"].tolist() == ["no PGx calls"] and set(f["pgx_flag"]) <= set(FLAGS)
