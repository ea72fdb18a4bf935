"""``run_pgx`` (the domain contract), ``api.read_block`` and the readers' refusals."""

from __future__ import annotations

import gzip
import hashlib
import json

import pandas as pd
import pytest

from pmed.cohort import Block, Cohort, read_block
from pmed.errors import InputError
from pmed.genomics.pgx import PgxResult, api, call_cohort, call_vcf, read_outside_calls, run_pgx
from pmed.result import DomainResult

VCF = """##fileformat=VCFv4.2
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP2\tP3
chr10\t94775367\trs12769205\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0
chr10\t94781859\trs4244285\tG\tA\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0
chr10\t94842866\trs3758581\tA\tG\t.\tPASS\t.\tGT\t1/1\t1/1\t1/1
chr10\t94981296\trs1057910\tA\tC\t.\tPASS\t.\tGT\t0/0\t0/1\t1/1
"""


@pytest.fixture
def vcf(tmp_path):
    p = tmp_path / "three.vcf"
    p.write_text(VCF)
    return p


class Recorder:
    def __init__(self):
        self.starts, self.steps = [], 0

    def start(self, total, description=""):
        self.starts.append((total, description))

    def advance(self, description=None, n=1):
        self.steps += n


def test_run_pgx_is_a_domain_result_for_every_sample(vcf, tmp_path):
    rec = Recorder()
    res = run_pgx(vcf, genes=["CYP2C19", "CYP2C9"], missing_to_ref=True, progress=rec)
    assert isinstance(res, PgxResult) and isinstance(res, DomainResult)
    assert res.domain == "pgx" and res.block_name == "pgx"
    assert res.sample_ids == ["P1", "P2", "P3"]
    assert (3, "calling pharmacogenes") in rec.starts and rec.steps >= 3
    # the block is what call_cohort gives (the older bridge)
    block = res.to_block()
    old = call_cohort(vcf, genes=["CYP2C19", "CYP2C9"], missing_to_ref=True)
    pd.testing.assert_frame_equal(block.data, old)
    assert block.data.loc["P2", "CYP2C19_phenotype"] == "Poor Metabolizer"
    assert block.data.loc["P3", "CYP2C9_activity_score"] == 0.0
    assert block.provenance["domain"] == "pgx" and block.provenance["missing_to_ref"] is True
    Cohort(pd.DataFrame({"age": [50.0, 60.0, 70.0]},
                        index=pd.Index(["P1", "P2", "P3"], name="patient_id"))
           ).add_block("pgx", block)
    s = res.summary()
    json.dumps(s, allow_nan=False)
    assert s["n_samples"] == 3 and s["genes"] == ["CYP2C19", "CYP2C9"]
    assert s["phenotypes"]["CYP2C19"]["Poor Metabolizer"] == 1
    assert "P1" not in json.dumps(s)  # counts, no patient IDs
    # provenance: the VCF hashed, options recorded (sample restriction as a count)
    vcf_entry = next(i for i in res.provenance["inputs"] if i["role"] == "vcf")
    assert vcf_entry["sha256"] == hashlib.sha256(vcf.read_bytes()).hexdigest()
    assert res.provenance["options"]["missing_to_ref"] is True


def test_write_and_read_block_back(vcf, tmp_path):
    res = run_pgx(vcf, genes=["CYP2C19", "CYP2C9"], missing_to_ref=True)
    out = tmp_path / "out"
    files = res.write(out, html=True)
    assert {"calls", "recommendations", "json", "provenance", "html_1"} <= set(files)
    assert not res.html  # the html flag applies to that write only
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["domain"] == "pgx" and prov["summary"]["n_samples"] == 3
    expected = res.to_block().data
    for path in (out, out / "calls.tsv"):
        got = api.read_block(path)
        assert isinstance(got, Block) and got.provenance["domain"] == "pgx"
        pd.testing.assert_frame_equal(got.data, expected, check_dtype=False)
    # the registry dispatches on provenance.json
    pd.testing.assert_frame_equal(read_block(out).data, expected, check_dtype=False)
    # other files of the folder are not the block: the caller reads them as plain tables
    assert api.read_block(out / "recommendations.tsv") is None
    expected[["CYP2C19_phenotype"]].to_csv(out / "features.csv")
    assert api.read_block(out / "features.csv") is None
    assert list(read_block(out / "features.csv").data.columns) == ["CYP2C19_phenotype"]
    assert api.read_block(tmp_path) is None  # a folder without calls.tsv


def test_write_results_and_call_vcf_still_work(vcf, tmp_path):
    from pmed.genomics.pgx import write_results

    res = call_vcf(vcf, samples=["P2"], genes=["CYP2C19"], missing_to_ref=True)
    paths = write_results(res, tmp_path / "o")
    assert paths["calls"].is_file() and (tmp_path / "o" / "provenance.json").is_file()
    assert res.provenance["options"]["samples"] == 1


def test_reader_refusals_are_input_errors(tmp_path):
    def write(name, text):
        p = tmp_path / name
        p.write_text(text)
        return p

    head = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
    rec = "chr10\t94781859\t.\tG\tA\t.\tPASS\t.\tGT\t"
    # a negative or signed allele index is not a genotype (int() would take it)
    for gt in ("-1/0", "+1/0", "1_0/0"):
        with pytest.raises(InputError, match="line 3"):
            run_pgx(write("neg.vcf", head + "S1\n" + rec + gt + "\n"))
    with pytest.raises(InputError, match="repeat an earlier sample name") as e:
        run_pgx(write("dup.vcf", head + "S1\tS1\n" + rec + "0/1\t0/1\n"))
    assert "column(s) 11" in str(e.value)
    with pytest.raises(InputError, match="without a name"):
        run_pgx(write("empty.vcf", head + "S1\t\n" + rec + "0/1\t0/1\n"))
    with pytest.raises(InputError, match="after the #CHROM line"):
        run_pgx(write("two.vcf", head + "S1\n" + head.splitlines()[1] + "S1\n" + rec + "0/1\n"))
    with pytest.raises(InputError, match="1 of the 2 requested") as e:
        run_pgx(write("ok.vcf", head + "S1\n" + rec + "0/1\n"), samples=["S1", "NOPE"])
    assert "NOPE" not in str(e.value)  # no sample IDs echoed
    with pytest.raises(InputError, match="no genotype call") as e:
        run_pgx(write("none.vcf", head + "S1\tS2\n" + rec + "0/1\t./.\n"), genes=["CYP2C19"])
    assert "S2" not in str(e.value) and "number 2" in str(e.value)
    # a truncated gzip file
    gz = tmp_path / "cut.vcf.gz"
    gz.write_bytes(gzip.compress((head + "S1\n" + rec + "0/1\n").encode() * 50)[:60])
    with pytest.raises(InputError, match="truncated or corrupt"):
        run_pgx(gz)


def test_bom_crlf_and_bad_bytes_are_read(tmp_path):
    p = tmp_path / "bom.vcf"
    p.write_bytes(b"\xef\xbb\xbf" + VCF.replace("\n", "\r\n").encode())
    res = run_pgx(p, genes=["CYP2C19"], missing_to_ref=True)
    assert res.to_block().data.loc["P2", "CYP2C19_diplotype"] == "*2/*2"
    o = tmp_path / "o.tsv"
    o.write_bytes(b"\xef\xbb\xbfCYP2D6\tCYP2D6*1/CYP2D6*4\r\n# \xff\xfe comment\n")
    assert read_outside_calls(o) == {"CYP2D6": "*1/*4"}
