"""Outside calls (PharmCAT TSV) and DPYD strand combinations through the full pipeline."""

from __future__ import annotations

import pytest

from pmed.errors import InputError
from pmed.genomics.pgx import call_vcf, read_outside_calls
from pmed.genomics.pgx.matcher import gene_model


def test_outside_call_tsv(tmp_path):
    p = tmp_path / "o.tsv"
    p.write_text("CYP2D6\tCYP2D6*3/CYP2D6*4\nHLA-B\t*02:01/B*04:05\n")
    assert read_outside_calls(p) == {"CYP2D6": "*3/*4", "HLA-B": "*02:01/*04:05"}
    bad = tmp_path / "b.tsv"
    bad.write_text("CYP2D6\n")
    with pytest.raises(InputError, match="line 1"):
        read_outside_calls(bad)


def _dpyd_vcf(tmp_path, genotypes: dict[str, str]) -> str:
    m = gene_model("DPYD")
    lines = ["##fileformat=VCFv4.2",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS"]
    for v in m.variants:
        gt = genotypes.get(v["rsid"], "0|0")
        lines.append("\t".join(["chr1", str(v["position"]), v["rsid"] or ".", v["ref"],
                                ",".join(v["alts"]), ".", "PASS", ".", "GT", gt]))
    p = tmp_path / "dpyd.vcf"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_dpyd_phased_combination_and_phenotype(tmp_path):
    # DpydTest.testDpydPhasedMultiTrans: c.498G>A + c.2582A>G in cis, c.2846A>T + c.2933A>G
    # on the other chromosome -> [c.498G>A + c.2582A>G]/[c.2846A>T + c.2933A>G]
    gts = {"rs72547601": "0|1", "rs60139309": "1|0", "rs67376798": "0|1",
           "rs139834141": "1|0"}
    res = call_vcf(_dpyd_vcf(tmp_path, gts), genes=["DPYD"])
    gc = res.samples[0].genes["DPYD"]
    assert gc.diplotypes == [("[c.498G>A + c.2582A>G]", "[c.2846A>T + c.2933A>G]")]
    row = res.calls_table().iloc[0]
    # lowest function per strand: c.498G>A (1.0) and c.2933A>G (0.0) -> activity 1.0
    assert row["phenotype"] == "Intermediate Metabolizer" and row["activity_score"] == "1.0"


def test_dpyd_unphased_lists_haplotypes(tmp_path):
    gts = {"rs72547601": "0/1", "rs60139309": "0/1", "rs67376798": "0/1", "rs139834141": "0/1"}
    res = call_vcf(_dpyd_vcf(tmp_path, gts), genes=["DPYD"])
    row = res.calls_table().iloc[0]
    assert row["haplotypes"] == "c.498G>A + c.2582A>G + c.2846A>T + c.2933A>G"
    assert set(row["diplotypes"].split("/")) == {"c.2846A>T", "c.2933A>G"}
    assert row["activity_score"] == "0.5" and "lowest-function" in row["warnings"]


def test_dpyd_half_missing_phased_genotypes(tmp_path):
    # DpydTest.hapB3AndIntronicC_missingAlternateStrands1: exonic c.1236G>A on strand 1 and
    # intronic c.1129-5923C>G on strand 2, each with the other strand unknown ("."):
    # strand 1 carries HapB3, strand 2 the intronic variant alone
    m = gene_model("DPYD")
    exon = next(v for v in m.variants if v["rsid"] == "rs56038477")
    intron = next(v for v in m.variants if v["rsid"] == "rs75017182")
    gts = {"rs56038477": "1|.", "rs75017182": ".|1"}
    assert exon["alts"] and intron["alts"]
    res = call_vcf(_dpyd_vcf(tmp_path, gts), genes=["DPYD"])
    gc = res.samples[0].genes["DPYD"]
    assert gc.diplotypes == [("c.1129-5923C>G", "c.1129-5923C>G, c.1236G>A (HapB3)")]
    # both strands known: HapB3 in cis, the other chromosome reference
    res2 = call_vcf(_dpyd_vcf(tmp_path, {"rs56038477": "1|0", "rs75017182": "1|0"}),
                    genes=["DPYD"])
    assert res2.samples[0].genes["DPYD"].diplotypes == [
        ("Reference", "c.1129-5923C>G, c.1236G>A (HapB3)")]


# --- outside calls pmed cannot interpret are refused (issue #16) -----------------------------

@pytest.mark.parametrize("row, says", [
    ("CYP2D6\t*1/*999", r"line 2: unknown CYP2D6 allele '\*999'"),
    ("CYP2D6\t*1/*4/*10", "not one or two alleles"),
    ("CYP2D7\t*1/*1", "outside calls for gene 'CYP2D7' are not supported"),
    ("CYP2D6\t\tPoor Metabolizer", "phenotype but no diplotype"),
    ("HLA-B\t*57/*08:01", "not an HLA allele name of two or more fields"),
    ("CYP2C19\t*2/*99", r"unknown CYP2C19 allele '\*99'"),
])
def test_uninterpretable_outside_calls_are_refused(tmp_path, row, says):
    p = tmp_path / "o.tsv"
    p.write_text("# header\n" + row + "\n")
    with pytest.raises(InputError, match=says) as e:
        read_outside_calls(p)
    assert str(p) in str(e.value) and "line 2" in str(e.value)
    if "unknown" in says:
        assert "alleles pmed knows include *1, *2" in e.value.fix


def test_outside_call_names_as_pharmcat_and_callers_write_them(tmp_path):
    p = tmp_path / "o.tsv"
    p.write_text("CYP2D6\tCYP2D6*1.001/CYP2D6*2x3\nHLA-A\tA*31:01:02/A*02:01\nMT-RNR1\t1555A>G\n"
                 "CYP2C19\t*2/*17\n")
    calls = read_outside_calls(p)
    # a duplication of three or more copies is the data's "x≥3" allele
    assert calls == {"CYP2D6": "*1.001/*2x≥3", "HLA-A": "*31:01:02/*02:01", "MT-RNR1": "1555A>G",
                     "CYP2C19": "*2/*17"}


def test_outside_call_for_a_matcher_gene_gets_its_phenotype(tmp_path):
    # a CYP2C19 call made elsewhere uses the same phenotype table as a VCF call (was "n/a")
    res = call_vcf(_dpyd_vcf(tmp_path, {}), genes=["DPYD"],
                   outside_calls={"CYP2C19": "*2/*17", "CYP2D6": "*1/*2x3"})
    calls = res.calls_table().set_index("gene")
    assert calls.loc["CYP2C19", "phenotype"] == "Intermediate Metabolizer"
    assert calls.loc["CYP2D6", "diplotypes"] == "*1/*2x≥3"
    assert calls.loc["CYP2D6", "phenotype"] == "Ultrarapid Metabolizer"
    assert "clopidogrel" in set(res.recommendations_table()["drug"])
