"""Fuzzed PGx readers: random and mutated VCFs and outside-call files.

Every outcome is a :class:`~pmed.genomics.pgx.PgxResult` (whose block, summary, files and
read-back work) or a :class:`pmed.errors.PmedError` — never another exception.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pmed.errors import PmedError  # noqa: E402
from pmed.genomics.pgx import api, read_outside_calls, run_pgx  # noqa: E402
from pmed.genomics.pgx.matcher import gene_model  # noqa: E402

GENES = ["CYP2C19", "CYP2C9", "UGT1A1", "DPYD"]  # a few genes keep each example fast

HEADER = [
    "##fileformat=VCFv4.2",
    "##contig=<ID=chr10,length=133797422>",
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP2",
]


def _records() -> list[str]:
    recs = [
        "chr10\t94775367\trs12769205\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1",
        "chr10\t94781859\trs4244285\tG\tA\t.\tPASS\t.\tGT\t0/1\t1/1",
        "chr10\t94842866\trs3758581\tA\tG\t.\tPASS\t.\tGT\t1/1\t1/1",
        "10\t94981296\trs1057910\tA\tC\t.\tPASS\t.\tGT\t0/0\t0/1",
        "chr2\t233759924\t.\tC\tT\t.\tPASS\t.\tGT:PS\t1|0:100\t0|0:100",
        "chr2\t233760233\t.\tCAT\tCATAT,C\t.\tPASS\t.\tGT:PS\t1|0:100\t0|2:100",
        "chr5\t1000\t.\tG\tA\t.\tPASS\t.\tGT\t0/1\t./.",
    ]
    for v in gene_model("DPYD").variants[:3]:
        recs.append("\t".join(["chr1", str(v["position"]), v["rsid"] or ".", v["ref"],
                               ",".join(v["alts"]), ".", "PASS", ".", "GT", "0/1", "0|0"]))
    return recs


RECORDS = _records()

GT_TOKENS = ["0/0", "0/1", "1|0", ".", "./.", ".|.", "0", "1", "2/1", "0/5", "-1/0", "0/1/1",
             "a/b", "", "0|.", ".|1", "00/1", "1_0/0", "\u0661/0", "0:1", "|", "/", "1//0",
             "99999999999/0", "+1/0", " 0/1", "0/1\r"]
FIELD_TOKENS = ["", ".", "chr10", "10", "MT", "CHR10", "94781859", "-5", "1e3", "abc", "N",
                "AC", "<DEL>", "*", "A,,G", "G,A", "GT:PS", "PS:GT", "GT:", "FORMAT", "#CHROM",
                "\ufeff", "\x00", "99999999999999999999999", "1_000"]
HEADER_LINES = ["##reference=file:///hg19.fa", "##contig=<ID=1,length=249250621>",
                "##contig=<ID=chr1,length=248956422>", "#CHROM\tPOS\tID", "##", "#",
                "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\tP1",
                "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1\t",
                "\ufeff##fileformat=VCFv4.2"]
OPS = ["gt", "field", "drop_col", "add_col", "drop_line", "dup_line", "swap", "replace_line",
       "header"]

token = st.one_of(st.sampled_from(GT_TOKENS + FIELD_TOKENS), st.text(max_size=12))
mutation = st.tuples(st.sampled_from(OPS), st.integers(0, 10_000), st.integers(0, 10_000),
                     token, st.sampled_from(HEADER_LINES))


def _mutate(lines: list[str], ops) -> list[str]:
    lines = list(lines)
    for op, a, b, tok, head in ops:
        if not lines:
            lines.append(tok)
            continue
        i = a % len(lines)
        cols = lines[i].split("\t")
        if op == "gt" and len(cols) > 9:
            j = 9 + b % (len(cols) - 9)
            cols[j] = tok + cols[j][cols[j].find(":"):] if ":" in cols[j] else tok
        elif op == "field":
            cols[b % len(cols)] = tok
        elif op == "drop_col" and len(cols) > 1:
            del cols[b % len(cols)]
        elif op == "add_col":
            cols.insert(b % (len(cols) + 1), tok)
        elif op == "drop_line":
            del lines[i]
            continue
        elif op == "dup_line":
            lines.insert(b % (len(lines) + 1), lines[i])
            continue
        elif op == "swap":
            j = b % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
            continue
        elif op == "replace_line":
            lines[i] = tok
            continue
        elif op == "header":
            lines.insert(b % (len(lines) + 1), head)
            continue
        lines[i] = "\t".join(cols)
    return lines


def _encode(lines: list[str], *, bom: bool, crlf: bool, compress: str, cut: float) -> bytes:
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", errors="surrogatepass")
    if compress == "none":
        return data
    data = gzip.compress(data)
    if compress == "truncated":
        data = data[: max(1, int(len(data) * cut))]
    return data


def _check_outcome(vcf: Path, out: Path, **kw) -> None:
    """Run the domain; a result must also give a block, a JSON summary and files read back."""
    try:
        res = run_pgx(vcf, genes=GENES, **kw)
    except PmedError:
        return
    block = res.to_block()
    assert block.data.index.name == "patient_id"
    assert block.data.index.is_unique
    json.dumps(res.summary(), allow_nan=False)
    if len(res.samples):
        res.write(out)
        back = api.read_block(out)
        if len(block.data.columns):
            assert back is not None
            assert list(back.data.index) == list(block.data.index)


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(ops=st.lists(mutation, max_size=4), bom=st.booleans(), crlf=st.booleans(),
       compress=st.sampled_from(["none", "none", "gzip", "truncated"]),
       cut=st.floats(0.05, 0.95), missing_to_ref=st.booleans(), require_calls=st.booleans())
def test_mutated_vcfs_give_a_result_or_a_pmed_error(ops, bom, crlf, compress, cut,
                                                    missing_to_ref, require_calls):
    lines = _mutate(HEADER + RECORDS, ops)
    with tempfile.TemporaryDirectory() as tmp:
        vcf = Path(tmp) / "x.vcf"
        vcf.write_bytes(_encode(lines, bom=bom, crlf=crlf, compress=compress, cut=cut))
        _check_outcome(vcf, Path(tmp) / "out", missing_to_ref=missing_to_ref,
                       require_calls=require_calls)


@FUZZ
@given(data=st.binary(max_size=600), gz=st.booleans(), keep_header=st.booleans())
def test_random_bytes_give_a_result_or_a_pmed_error(data, gz, keep_header):
    if keep_header:  # random records under a valid header get past the header checks
        data = "\n".join(HEADER).encode() + b"\n" + data
    with tempfile.TemporaryDirectory() as tmp:
        vcf = Path(tmp) / "x.vcf.gz"
        vcf.write_bytes(gzip.compress(data) if gz else data)
        _check_outcome(vcf, Path(tmp) / "out", require_calls=False)


OUTSIDE_TOKENS = ["CYP2D6", "HLA-A", "HLA-B", "MT-RNR1", "CYP2C19", "", "*1/*4", "CYP2D6*1/CYP2D6*4",
                  "*1.001/*4", "*1x2/*4", "A*02:01/A*03:01", "*57:01", "(*1/*4)", "/", "*1",
                  "Poor Metabolizer", "positive", "#", "\ufeffCYP2D6", "*", "\\", "[", "*1+*2"]
outside_cell = st.one_of(st.sampled_from(OUTSIDE_TOKENS), st.text(max_size=10))


@FUZZ
@given(rows=st.lists(st.lists(outside_cell, max_size=4), max_size=5), bom=st.booleans(),
       gz=st.booleans(), raw=st.one_of(st.none(), st.binary(max_size=200)))
def test_outside_call_files_give_a_result_or_a_pmed_error(rows, bom, gz, raw):
    data = raw if raw is not None else (
        (b"\xef\xbb\xbf" if bom else b"")
        + "\n".join("\t".join(r) for r in rows).encode("utf-8", errors="surrogatepass"))
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "outside.tsv"
        tsv.write_bytes(gzip.compress(data) if gz else data)
        try:
            calls = read_outside_calls(tsv)
        except PmedError:
            return
        assert isinstance(calls, dict)
        vcf = Path(tmp) / "x.vcf"
        vcf.write_text("\n".join(HEADER + RECORDS) + "\n")
        try:
            res = run_pgx(vcf, genes=["CYP2C19"], outside_calls=tsv)
        except PmedError:
            return
        json.dumps(res.summary(), allow_nan=False)
        assert res.to_block().data.index.is_unique
