"""Named-allele matcher on hand-made genotypes (package data only, no shared files)."""

from __future__ import annotations

import pytest

from pmed.genomics.pgx.matcher import gene_model, match_gene
from pmed.genomics.pgx.phenotype import phenotype_for


def _sample(gene: str, calls: dict[str, tuple], *, phased: bool = False, fill_ref: bool = True,
            missing: tuple[str, ...] = ()) -> dict:
    """Definition index -> (a1, a2, phased, ps); calls keyed by rsid with VCF alleles."""
    m = gene_model(gene)
    out = {}
    for j, v in enumerate(m.variants):
        rs = v["rsid"]
        if rs in missing:
            continue
        if rs in calls:
            a1, a2, *ps = calls[rs]
            out[j] = (a1, a2, phased, ps[0] if ps else None)
        elif fill_ref:
            out[j] = (v["ref"], v["ref"], phased, None)
    return out


def _dips(call) -> set[str]:
    return {f"{a}/{b}" for a, b in call.diplotypes}


def test_cyp2c19_reference_is_star38():
    call = match_gene("CYP2C19", _sample("CYP2C19", {}))
    assert _dips(call) == {"*38/*38"}
    assert call.scores == [70]  # 35 defined positions per allele, as PharmCAT's match score


def test_cyp2c19_star2_star17_unphased():
    g = {"rs3758581": ("G", "G"), "rs4244285": ("G", "A"), "rs12769205": ("A", "G"),
         "rs12248560": ("C", "T")}
    call = match_gene("CYP2C19", _sample("CYP2C19", g))
    assert _dips(call) == {"*2/*17"}
    ph = phenotype_for("CYP2C19", call.diplotypes[0])
    assert ph.phenotype == "Intermediate Metabolizer"


def test_cyp2c19_homozygous_star2_poor_metabolizer():
    g = {"rs3758581": ("G", "G"), "rs4244285": ("A", "A"), "rs12769205": ("G", "G")}
    call = match_gene("CYP2C19", _sample("CYP2C19", g))
    assert _dips(call) == {"*2/*2"}
    assert phenotype_for("CYP2C19", ("*2", "*2")).phenotype == "Poor Metabolizer"


def test_missing_position_narrows_then_keeps_alternatives():
    # PharmCAT PipelineTest.testCyp2c19s1s4missingS1: *1 and *38 differ only at rs3758581
    g = {"rs12248560": ("C", "T"), "rs28399504": ("A", "G")}
    call = match_gene("CYP2C19", _sample("CYP2C19", g, missing=("rs3758581",)))
    assert _dips(call) == {"*1/*4", "*4/*38"}
    assert len(call.missing_positions) == 1


def test_all_matches_versus_top_candidates():
    # NamedAlleleMatcherCyp2c19Test.s1s1rs12248560missing: all three pairs are possible
    g = {"rs3758581": ("G", "G")}
    s = _sample("CYP2C19", g, missing=("rs12248560",))
    assert _dips(match_gene("CYP2C19", s, top_candidate_only=False)) == {
        "*1/*1", "*1/*17", "*17/*17"}
    assert _dips(match_gene("CYP2C19", s)) == {"*1/*1"}


def test_phasing_resolves_cis_trans():
    # UGT1A1 *80 and *28 (TA repeat rs3064744): in cis -> *80+*28; unphased -> two options
    base = {"rs887829": ("C", "T"), "rs3064744": ("CAT", "CATAT")}
    unphased = match_gene("UGT1A1", _sample("UGT1A1", base), top_candidate_only=False)
    assert _dips(unphased) == {"*1/*80+*28", "*28/*80"}
    cis = {"rs887829": ("T", "C"), "rs3064744": ("CATAT", "CAT")}
    phased = match_gene("UGT1A1", _sample("UGT1A1", cis, phased=True))
    assert _dips(phased) == {"*1/*80+*28"}
    trans = {"rs887829": ("T", "C"), "rs3064744": ("CAT", "CATAT")}
    assert _dips(match_gene("UGT1A1", _sample("UGT1A1", trans, phased=True))) == {"*28/*80"}


def test_phase_sets_are_independent_blocks():
    # two phased het positions in different phase sets behave like unphased ones
    g = {"rs887829": ("T", "C", "1"), "rs3064744": ("CAT", "CATAT", "2")}
    call = match_gene("UGT1A1", _sample("UGT1A1", g, phased=True), top_candidate_only=False)
    assert _dips(call) == {"*1/*80+*28", "*28/*80"}


def test_undocumented_allele():
    # TPMT treats undocumented variation as reference (with a warning) ...
    tp = match_gene("TPMT", _sample("TPMT", {"rs1800462": ("C", "A")}))
    assert _dips(tp) == {"*1/*1"} and "treated as reference" in tp.warnings[0]
    # ... CYP2C19 does not: the gene is not callable
    cy = match_gene("CYP2C19", _sample("CYP2C19", {"rs3758581": ("G", "T")}))
    assert cy.uncallable and not cy.diplotypes


def test_g6pd_haploid_male():
    m = gene_model("G6PD")
    j = next(i for i, v in enumerate(m.variants) if v["rsid"] == "rs5030869")
    sample = {i: (v["ref"], None, False, None) for i, v in enumerate(m.variants)}
    sample[j] = ("T", None, False, None)
    call = match_gene("G6PD", sample)
    assert call.diplotypes == [("Chatham", None)]
    ref = match_gene("G6PD", {i: (v["ref"], None, False, None) for i, v in enumerate(m.variants)})
    assert ref.diplotypes == [("B (reference)", None)]
    assert phenotype_for("G6PD", ("B (reference)",)).phenotype == "Normal"


def test_dpyd_lowest_function_unphased():
    # DpydTest.testDpydUnphasedMultiTrans: four variant haplotypes reported, the two lowest
    # (c.2933A>G no function, c.2846A>T decreased) drive the phenotype
    g = {"rs67376798": ("A", "T"), "rs72547601": ("C", "T"), "rs60139309": ("T", "C"),
         "rs139834141": ("C", "T")}
    # cpic -> vcf alleles: this gene is on the minus strand, so map through the definitions
    m = gene_model("DPYD")
    calls = {}
    for _j, v in enumerate(m.variants):
        if v["rsid"] in g:
            a, b = g[v["rsid"]]
            calls[v["rsid"]] = (v["cpic_to_vcf"][a], v["cpic_to_vcf"][b])
    call = match_gene("DPYD", _sample("DPYD", calls))
    assert sorted(call.haplotypes) == sorted(["c.498G>A", "c.2582A>G", "c.2846A>T", "c.2933A>G"])
    from pmed.genomics.pgx.phenotype import lowest_function_pair

    pair = lowest_function_pair("DPYD", call.haplotypes)
    assert set(pair) == {"c.2933A>G", "c.2846A>T"}
    ph = phenotype_for("DPYD", pair)
    assert ph.activity_score == "0.5" and ph.phenotype == "Poor Metabolizer"


def test_no_data_gene():
    call = match_gene("CYP2C9", {})
    assert call.no_data and not call.called


@pytest.mark.parametrize("gene", ["CYP2C9", "CYP3A5", "NUDT15", "SLCO1B1", "TPMT", "VKORC1"])
def test_all_reference_gives_reference_diplotype(gene):
    m = gene_model(gene)
    ref = m.names[m.ref_index]
    assert _dips(match_gene(gene, _sample(gene, {}))) == {f"{ref}/{ref}"}


def test_cyp2c8_from_pypgx_tables():
    # CYP2C8 *3 = rs10509681 (K399R) + rs11572080 (R139K); *4 = rs1058930 (I264M)
    m = gene_model("CYP2C8")
    assert m.names[m.ref_index] == "*1" and "*3" in m.names
    g = {"rs10509681": ("T", "C"), "rs11572080": ("C", "T"), "rs1058930": ("G", "C")}
    call = match_gene("CYP2C8", _sample("CYP2C8", g))
    assert _dips(call) == {"*3/*4"}
    assert phenotype_for("CYP2C8", ("*3", "*4")).functions == ["Unknown Function"] * 2
