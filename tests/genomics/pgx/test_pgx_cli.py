"""``pmed pgx call`` (the Typer sub-app), outputs, HTML section and cohort features."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from pmed.cli.pgx import app
from pmed.datasets._paths import shared_data_dir
from pmed.errors import InputError

EX = shared_data_dir() / "data" / "pgx" / "pharmcat_v3.1.1" / "examples"

VCF = """##fileformat=VCFv4.2
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP2
chr10\t94775367\trs12769205\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1
chr10\t94781859\trs4244285\tG\tA\t.\tPASS\t.\tGT\t0/1\t1/1
chr10\t94842866\trs3758581\tA\tG\t.\tPASS\t.\tGT\t1/1\t1/1
"""


def test_cli_call_writes_tables_json_html(tmp_path):
    vcf = tmp_path / "two.vcf"
    vcf.write_text(VCF)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["call", str(vcf), "--out", str(out), "--missing-to-ref",
                                 "--html"])
    assert r.exit_code == 0, r.output
    calls = pd.read_csv(out / "calls.tsv", sep="\t", dtype=str)
    assert list(calls.columns[:7]) == ["sample", "gene", "diplotypes", "phenotype",
                                      "activity_score", "missing_positions", "warnings"]
    c19 = calls[calls["gene"] == "CYP2C19"].set_index("sample")
    assert c19.loc["P1", "diplotypes"] == "*1/*2"
    assert c19.loc["P2", "phenotype"] == "Poor Metabolizer"
    assert calls["data_version"].nunique() == 1 and calls["data_version"].iloc[0].startswith(
        "pharmcat-3.1.1")
    recs = pd.read_csv(out / "recommendations.tsv", sep="\t", dtype=str)
    p2 = recs[(recs["sample"] == "P2") & (recs["drug"] == "clopidogrel")]
    assert (p2["recommendation"].str.startswith("Avoid clopidogrel")).any()
    js = json.loads((out / "pgx.json").read_text())
    assert js["data_version"] == calls["data_version"].iloc[0]
    assert len(js["calls"]) == len(calls)
    html = (out / "pgx_2.html").read_text()
    assert "<section class=\"pgx\"" in html and "Poor Metabolizer" in html and "clopidogrel" in html


def test_cli_errors_propagate(tmp_path):
    bad = tmp_path / "bad.vcf"
    bad.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
                   "chr10\tnotanumber\t.\tA\tG\t.\t.\t.\tGT\t0/1\n")
    r = CliRunner().invoke(app, ["call", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert isinstance(r.exception, InputError) and "line 3" in str(r.exception)


@pytest.mark.realdata
def test_cli_on_pharmcat_example(tmp_path):
    vcf = EX / "pharmcat.example.vcf"
    if not vcf.is_file():
        pytest.skip(f"needs {vcf}")
    r = CliRunner().invoke(app, ["call", str(vcf), "-o", str(tmp_path),
                                 "--outside-call", str(EX / "pharmcat.example.outsideCall.tsv")])
    assert r.exit_code == 0, r.output
    calls = pd.read_csv(tmp_path / "calls.tsv", sep="\t", dtype=str).set_index("gene")
    assert calls.loc["CYP2C19", "diplotypes"] == "*38/*38"
    assert calls.loc["CYP2D6", "phenotype"] == "Intermediate Metabolizer"
    recs = pd.read_csv(tmp_path / "recommendations.tsv", sep="\t", dtype=str)
    assert "abacavir" in set(recs["drug"])


def test_call_cohort_on_synthetic_vcf(tmp_path):
    from pmed.datasets.synthetic import write_synthetic_cohort
    from pmed.genomics.pgx import call_cohort

    paths = write_synthetic_cohort(tmp_path, n_patients=120, n_new=0, seed=3)
    feats = call_cohort(paths["genotypes"], genes=["CYP2C19", "CYP2C9"])
    truth = pd.read_csv(paths["truth_table"]).set_index("patient_id")
    assert feats.index.name == "patient_id" and len(feats) == 120
    assert {"CYP2C19_phenotype", "CYP2C9_activity_score"} <= set(feats.columns)
    # *2 (rs4244285) carriers without *17/*4 are unambiguous: compare with the simulator
    abbrev = {"NM": "Normal Metabolizer", "IM": "Intermediate Metabolizer",
              "PM": "Poor Metabolizer"}
    t = truth.loc[feats.index]
    clear = t["cyp2c19_star17_alleles"] == 0
    assert clear.sum() > 40
    expected = t.loc[clear, "cyp2c19_phenotype"].map(abbrev)
    assert (feats.loc[clear, "CYP2C19_phenotype"] == expected).all()
    assert feats.attrs["provenance"]["data_version"].startswith("pharmcat-3.1.1")
    # the features attach to a Cohort as the standard "pgx" block
    from pmed.cohort import Cohort

    patients = pd.read_csv(paths["patients"], index_col=0)
    cohort = Cohort(patients).add_block("pgx", feats, provenance=feats.attrs["provenance"])
    assert "CYP2C19_phenotype" in cohort.blocks["pgx"].data.columns
