"""Phenotypes, activity scores and guideline recommendations (package data)."""

from __future__ import annotations

from pmed.genomics.pgx.phenotype import lowest_function_pair, phenotype_for
from pmed.genomics.pgx.recommend import recommend


def _by(recs, drug, source):
    return [r for r in recs if r.drug == drug and r.source == source]


def test_cyp2c19_poor_metabolizer_avoid_clopidogrel():
    recs = recommend({"CYP2C19": [phenotype_for("CYP2C19", ("*2", "*2"))]})
    cpic = _by(recs, "clopidogrel", "CPIC")
    assert {r.population for r in cpic} == {"CVI ACS PCI", "NVI", "CVI non-ACS non-PCI"}
    assert all(r.text.startswith("Avoid clopidogrel if possible") for r in cpic)
    assert {r.classification for r in cpic} == {"Strong", "Moderate"}
    assert _by(recs, "clopidogrel", "DPWG")[0].text.startswith(
        "PERCUTANEOUS CORONARY INTERVENTION, STROKE or TIA: avoid clopidogrel")


def test_dpyd_activity_score_and_fluoropyrimidines():
    ph = phenotype_for("DPYD", ("Reference", "c.1905+1G>A (*2A)"))
    assert (ph.phenotype, ph.activity_score) == ("Intermediate Metabolizer", "1.0")
    recs = recommend({"DPYD": [ph]})
    cape = _by(recs, "capecitabine", "CPIC")[0]
    assert cape.classification == "Strong"
    assert cape.text.startswith("Reduce starting dose by 50%")
    assert _by(recs, "fluorouracil", "DPWG")[0].text.startswith("Start with 50% of the standard dose")


def test_cyp2c9_activity_scores():
    assert phenotype_for("CYP2C9", ("*1", "*1")).activity_score == "2.0"
    assert phenotype_for("CYP2C9", ("*1", "*2")).activity_score == "1.5"
    p33 = phenotype_for("CYP2C9", ("*3", "*3"))
    assert (p33.phenotype, p33.activity_score) == ("Poor Metabolizer", "0.0")
    recs = recommend({"CYP2C9": [p33]})
    # DPWG warfarin: the diplotype-specific recommendation replaces the phenotype one
    warf = _by(recs, "warfarin", "DPWG")
    assert len(warf) == 1 and warf[0].lookup == {"CYP2C9": {"*3": 2.0}}
    assert warf[0].text.lower().startswith("use 20% of the standard initial dose")


def test_tpmt_nudt15_thiopurines_need_both_genes():
    tp = phenotype_for("TPMT", ("*1", "*3A"))
    nu = phenotype_for("NUDT15", ("*1", "*1"))
    assert tp.phenotype == "Intermediate Metabolizer"
    recs = recommend({"TPMT": [tp], "NUDT15": [nu]})
    aza = _by(recs, "azathioprine", "CPIC")
    assert aza and aza[0].phenotypes == {"TPMT": "Intermediate Metabolizer",
                                         "NUDT15": "Normal Metabolizer"}


def test_hla_allele_status_and_ambiguity_flag():
    from pmed.genomics.pgx.phenotype import Phenotype

    hla = Phenotype(gene="HLA-B", diplotype="*15:02/*57:01", phenotype="n/a",
                    alleles=("*15:02", "*57:01"), lookup={})
    recs = recommend({"HLA-B": [hla]})
    aba = _by(recs, "abacavir", "CPIC")[0]
    assert aba.text == "Abacavir is not recommended"
    assert aba.phenotypes == {"HLA-B": "*57:01 positive"}
    # two equally good CYP2C19 diplotypes with different phenotypes: flagged ambiguous
    recs = recommend({"CYP2C19": [phenotype_for("CYP2C19", ("*1", "*17")),
                                  phenotype_for("CYP2C19", ("*4", "*38"))]})
    assert all(r.ambiguous for r in _by(recs, "clopidogrel", "CPIC"))


def test_lowest_function_pair():
    assert set(lowest_function_pair("DPYD", ["c.498G>A", "c.2846A>T", "c.2933A>G"])) == {
        "c.2846A>T", "c.2933A>G"}
