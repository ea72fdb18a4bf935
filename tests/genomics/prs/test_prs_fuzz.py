"""Fuzzed readers: random and mutated scoring files, PLINK filesets and VCFs.

Every outcome is a result or a :class:`pmed.errors.PmedError` (the message a user sees), never
another exception.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pmed.errors import PmedError  # noqa: E402
from pmed.genomics.prs import open_target, read_scorefile, run_prs  # noqa: E402

# deterministic in the suite; PMED_FUZZ_EXAMPLES=2000 explores further with fresh random draws
_EXPLORE = int(os.environ.get("PMED_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_EXPLORE or 60, deadline=None, derandomize=not _EXPLORE,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

N_VAR, N_SAMPLES = 12, 7
BASES = "ACGT"


# ---------------------------------------------------------------------- small real inputs
def _variants() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ref = rng.choice(list("AC"), N_VAR)
    alt = np.where(ref == "A", "G", "T")
    return pd.DataFrame({"chrom": "1", "pos": np.arange(1, N_VAR + 1) * 100,
                         "id": [f"rs{i + 1}" for i in range(N_VAR)], "ref": ref, "alt": alt})


def _genotypes() -> np.ndarray:
    rng = np.random.default_rng(1)
    g = rng.integers(0, 3, (N_VAR, N_SAMPLES)).astype(np.int8)
    g[0, 0] = -9  # one missing call
    return g


def _scoring_text(v: pd.DataFrame) -> str:
    rows = pd.DataFrame({"rsID": v["id"], "chr_name": v["chrom"], "chr_position": v["pos"],
                         "effect_allele": v["alt"], "other_allele": v["ref"],
                         "effect_weight": np.linspace(-0.5, 0.5, len(v)).round(4)})
    return ("###PGS CATALOG SCORING FILE\n#format_version=2.0\n#pgs_id=PGS_FUZZ\n"
            "#genome_build=GRCh38\n" + rows.to_csv(sep="\t", index=False))


def _write_plink(d: Path, v: pd.DataFrame, g: np.ndarray) -> dict[str, Path]:
    import pgenlib

    w = pgenlib.PgenWriter(str(d / "t.pgen").encode(), N_SAMPLES, N_VAR, False)
    for row in g:
        w.append_biallelic(np.ascontiguousarray(row))
    w.close()
    (d / "t.pvar").write_text("##fileformat=PVARv1.0\n##contig=<ID=1,assembly=GRCh38>\n"
                              "#CHROM\tPOS\tID\tREF\tALT\n"
                              + "".join(f"{r.chrom}\t{r.pos}\t{r.id}\t{r.ref}\t{r.alt}\n"
                                        for r in v.itertuples()))
    psam = "#FID\tIID\tSEX\n" + "".join(f"f{i}\ts{i}\tNA\n" for i in range(N_SAMPLES))
    (d / "t.psam").write_text(psam)
    # PLINK 1: SNP-major .bed, 2 bits per genotype (00 hom A1, 01 missing, 10 het, 11 hom A2);
    # A1 (5th .bim column) is the counted ALT allele
    code = {2: 0b00, -9: 0b01, 1: 0b10, 0: 0b11}
    body = bytearray(b"\x6c\x1b\x01")
    for row in g:
        for s in range(0, N_SAMPLES, 4):
            byte = 0
            for k, x in enumerate(row[s: s + 4]):
                byte |= code[int(x)] << (2 * k)
            body.append(byte)
    (d / "b.bed").write_bytes(bytes(body))
    (d / "b.bim").write_text("".join(f"{r.chrom}\t{r.id}\t0\t{r.pos}\t{r.alt}\t{r.ref}\n"
                                     for r in v.itertuples()))
    (d / "b.fam").write_text("".join(f"f{i} s{i} 0 0 0 -9\n" for i in range(N_SAMPLES)))
    return {"pgen": d / "t.pgen", "bed": d / "b.bed"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from pmed.io import write_vcf

    d = tmp_path_factory.mktemp("fuzz_base")
    v, g = _variants(), _genotypes()
    files = _write_plink(d, v, g)
    haps = np.stack([(g >= 1).astype(int), (g == 2).astype(int)], axis=2)
    haps[g < 0] = -1
    files["vcf_gz"] = write_vcf(d / "t.vcf.gz", v, haps, [f"s{i}" for i in range(N_SAMPLES)],
                                file_date=None)
    files["vcf"] = d / "t.vcf"
    files["vcf"].write_bytes(gzip.decompress(files["vcf_gz"].read_bytes()))
    files["scorefile"] = d / "PGS_FUZZ.txt"
    files["scorefile"].write_text(_scoring_text(v))
    files["genotypes"] = g
    return files


def _outcome(fn, *args, **kwargs):
    """Run ``fn``: a result or a PmedError pass; any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are allowed; exceptions are what is checked
        try:
            return fn(*args, **kwargs)
        except PmedError as e:
            assert str(e)  # a message the user can read
            return e


def _read_all(path: Path):
    t = open_target(path)
    try:
        v = t.variants
        out = np.empty((len(v), t.n_samples), dtype=t.dtype)
        for s, blk in t.iter_blocks(v["var_idx"].to_numpy(), v["allele_idx"].to_numpy(), 5):
            out[s: s + len(blk)] = blk
        return out
    finally:
        t.close()


def _mutate(data: bytes, ops) -> bytes:
    """Apply (kind, position, byte) edits: flip, insert, delete, truncate."""
    b = bytearray(data)
    for kind, pos, val in ops:
        if not b:
            break
        i = pos % len(b)
        if kind == "flip":
            b[i] ^= (val % 255) + 1
        elif kind == "set":
            b[i] = val
        elif kind == "insert":
            b.insert(i, val)
        elif kind == "delete":
            del b[i]
        else:  # truncate
            del b[i:]
    return bytes(b)


EDITS = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                           st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4)


# ---------------------------------------------------------------------- scoring files
COLUMN_NAMES = ["rsID", "chr_name", "chr_position", "effect_allele", "other_allele",
                "effect_weight", "is_dominant", "is_recessive", "is_haplotype",
                "allelefrequency_effect", "hm_chr", "hm_pos", "hm_rsID", "hm_inferOtherAllele",
                "dosage_0_weight", "dosage_1_weight", "ID", "A1", "A2", "SCORE1", "locus_name",
                "weird col", ""]
CELLS = st.one_of(
    st.sampled_from(["A", "C", "G", "T", "AT", "a", "N", "-", "e4", "A/G", "HLA*01", "", "NA",
                     "rs1", "rs7", "1", "22", "chr1", "X", "MT", "100", "200", "0", "-0.5",
                     "1e300", "nan", "inf", "True", "FALSE", "1:100:A:G", "chr1_300_C_T", " ",
                     "\"", "'", "#", "=", "\\"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**40), 2**40).map(str),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\t\r\n"), max_size=6),
)
HEADER_LINES = st.lists(st.one_of(
    st.sampled_from(["#pgs_id=PGS_X", "#genome_build=GRCh38", "#genome_build=GRCh37",
                     "#genome_build=NR", "#HmPOS_build=GRCh38", "#format_version=2.0",
                     "###PGS CATALOG", "#", "#=", "#pgs_id=", "#genome_build=hg19", ""]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
    .map(lambda t: "#" + t)), max_size=4)


@st.composite
def scoring_files(draw):
    header = draw(HEADER_LINES)
    cols = draw(st.lists(st.sampled_from(COLUMN_NAMES), min_size=1, max_size=7))
    n_rows = draw(st.integers(0, 6))
    rows = [[draw(CELLS) for _ in cols] for _ in range(n_rows)]
    if rows and draw(st.booleans()):  # ragged rows: a cell too many or too few
        r = draw(st.integers(0, len(rows) - 1))
        rows[r] = rows[r][:-1] if draw(st.booleans()) else [*rows[r], "extra"]
    text = "\n".join([*header, "\t".join(cols), *("\t".join(r) for r in rows)])
    if draw(st.booleans()):
        text += "\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # UTF-8 BOM
    gz = draw(st.booleans())
    if gz:
        data = gzip.compress(data)
    if draw(st.integers(0, 4)) == 0:  # truncated
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    return data, gz


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="pmed_fuzz_"))


@FUZZ
@given(scoring_files())
def test_random_scoring_files(case):
    data, gz = case
    d = _tmp()
    try:
        p = d / ("s.txt.gz" if gz else "s.txt")
        p.write_bytes(data)
        _outcome(read_scorefile, p)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@FUZZ
@given(EDITS, st.booleans(), st.booleans())
def test_mutated_scoring_file_scores_or_refuses(base, edits, bom, gz):
    data = (b"\xef\xbb\xbf" if bom else b"") + base["scorefile"].read_bytes()
    if gz:
        data = gzip.compress(data)
    d = _tmp()
    try:
        p = d / "PGS_FUZZ.txt"
        p.write_bytes(_mutate(data, edits))
        _outcome(run_prs, base["vcf_gz"], p, min_overlap=0.0, hash_inputs=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_bom_scoring_file_reads_its_header(base, tmp_path):
    for gz in (False, True):
        data = b"\xef\xbb\xbf" + base["scorefile"].read_bytes()
        p = tmp_path / ("bom.txt.gz" if gz else "bom.txt")
        p.write_bytes(gzip.compress(data) if gz else data)
        sf = read_scorefile(p)
        assert sf.header["format_version"] == "2.0" and sf.scores == ["PGS_FUZZ"]
        assert len(sf.variants) == N_VAR
        # a BOM before a bare column header (no metadata lines)
        bare = "\n".join(base["scorefile"].read_text().splitlines()[4:]) + "\n"
        q = tmp_path / "bare.txt"
        q.write_bytes(b"\xef\xbb\xbf" + bare.encode())
        assert len(read_scorefile(q).variants) == N_VAR


# ---------------------------------------------------------------------- PLINK filesets
def _copy_fileset(base, kind: str, d: Path) -> Path:
    stem = base[kind].with_suffix("")
    for f in stem.parent.glob(stem.name + ".*"):
        shutil.copy(f, d / f.name)
    return d / base[kind].name


def test_intact_inputs_read_their_genotypes(base):
    g = base["genotypes"]
    for kind in ("pgen", "bed", "vcf_gz", "vcf"):
        got = _read_all(base[kind]).astype(float)
        got[got < 0] = -9
        np.testing.assert_array_equal(got, g, err_msg=kind)


@FUZZ
@given(st.sampled_from(["pgen", "bed"]), st.integers(0, 2), EDITS)
def test_mutated_plink_filesets(base, kind, which, edits):
    d = _tmp()
    try:
        main = _copy_fileset(base, kind, d)
        sides = {"pgen": [".pgen", ".pvar", ".psam"], "bed": [".bed", ".bim", ".fam"]}[kind]
        victim = main.with_suffix(sides[which])
        victim.write_bytes(_mutate(victim.read_bytes(), edits))
        if isinstance(_outcome(_read_all, main), np.ndarray):
            _outcome(run_prs, main, base["scorefile"], min_overlap=0.0, hash_inputs=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------- VCF
@FUZZ
@given(st.sampled_from(["vcf", "vcf_gz"]), EDITS, st.sampled_from(["GT", "DS"]))
def test_mutated_vcfs(base, kind, edits, field):
    d = _tmp()
    try:
        p = d / base[kind].name
        p.write_bytes(_mutate(base[kind].read_bytes(), edits))
        res = _outcome(open_target, p, dosage_field=field)
        if not isinstance(res, PmedError):
            res.close()
            if field == "GT":
                _outcome(_read_all, p)
                _outcome(run_prs, p, base["scorefile"], min_overlap=0.0, hash_inputs=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["1", "chr1", "2", "", "X"]), st.integers(-5, 10**10),
                          st.sampled_from(["A", "C", "AT", "N", ".", "", "<DEL>", "*"]),
                          st.sampled_from(["G", "T", "G,T", ".", "", "A,,C", "<INS>"]),
                          st.sampled_from(["0/1", "1|1", "./.", ".", "0", "2/3", "0/0/1", "a",
                                           ""])), min_size=0, max_size=6),
       st.booleans())
def test_random_vcf_records(records, samples_line):
    d = _tmp()
    try:
        lines = ["##fileformat=VCFv4.2", "##contig=<ID=1>",
                 '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO" + ("\tFORMAT\ts1" if samples_line
                                                                   else "")]
        for i, (c, pos, ref, alt, gt) in enumerate(records):
            lines.append("\t".join([c, str(pos), f"rs{i}", ref, alt, ".", "PASS", "."]
                                   + (["GT", gt] if samples_line else [])))
        p = d / "r.vcf"
        p.write_text("\n".join(lines) + "\n")
        if isinstance(_outcome(open_target, p), PmedError):
            return
        _outcome(_read_all, p)
    finally:
        shutil.rmtree(d, ignore_errors=True)
