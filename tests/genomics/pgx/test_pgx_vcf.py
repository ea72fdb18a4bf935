"""VCF input: representation normalisation, chr prefixes, phasing, errors."""

from __future__ import annotations

import gzip
import os

import pytest

from pmed.errors import InputError, PmedWarning
from pmed.genomics.pgx import call_vcf, read_pgx_vcf
from pmed.genomics.pgx.vcf import PgxBuildWarning, PgxReferenceWarning

HEADER = "##fileformat=VCFv4.2\n"
COLS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT"


def _vcf(tmp_path, records: list[str], samples=("S1",), header: str = HEADER, name="x.vcf"):
    text = header + COLS + "\t" + "\t".join(samples) + "\n" + "".join(r + "\n" for r in records)
    p = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(p, "wt") as fh:
            fh.write(text)
    else:
        p.write_text(text)
    return p


def _rec(chrom, pos, ref, alt, *gts, rsid="."):
    return "\t".join([chrom, str(pos), rsid, ref, alt, ".", "PASS", ".", "GT", *gts])


def _cyp2c19(res, sample=0):
    return res.samples[sample].genes["CYP2C19"]


CYP2C19_2_HET = [  # *2 on a *1 backbone: rs12769205, rs4244285 het and rs3758581 G/G
    ("chr10", 94781858, "C", "T"),  # placeholder, replaced below
]


def _star2_records(prefix="chr", gt="0/1"):
    return [
        _rec(f"{prefix}10", 94775367, "A", "G", gt),   # rs12769205
        _rec(f"{prefix}10", 94781859, "G", "A", gt),   # rs4244285 (*2)
        _rec(f"{prefix}10", 94842866, "A", "G", "1/1"),  # rs3758581 (*1 backbone)
    ]


@pytest.mark.parametrize("prefix", ["chr", ""])
def test_chr_prefix_and_missing_to_ref(tmp_path, prefix):
    p = _vcf(tmp_path, _star2_records(prefix))
    res = call_vcf(p, genes=["CYP2C19"], missing_to_ref=True)
    assert _cyp2c19(res).diplotypes == [("*1", "*2")]
    assert res.calls_table().loc[0, "phenotype"] == "Intermediate Metabolizer"
    # without --missing-to-ref the 32 absent positions are missing, the call still narrows
    res2 = call_vcf(p, genes=["CYP2C19"])
    gc = _cyp2c19(res2)
    assert len(gc.missing_positions) == 32
    assert ("*1", "*2") in gc.diplotypes


def test_bgzip_and_multisample(tmp_path):
    recs = [
        _rec("chr10", 94775367, "A", "G", "0/1", "1/1", "0/0"),
        _rec("chr10", 94781859, "G", "A", "0/1", "1/1", "0/0"),
        _rec("chr10", 94842866, "A", "G", "1/1", "1/1", "0/0"),
    ]
    p = _vcf(tmp_path, recs, samples=("A", "B", "C"), name="m.vcf.gz")
    res = call_vcf(p, genes=["CYP2C19"], missing_to_ref=True)
    got = [s.genes["CYP2C19"].diplotypes for s in res.samples]
    assert got == [[("*1", "*2")], [("*2", "*2")], [("*38", "*38")]]
    only_b = call_vcf(p, genes=["CYP2C19"], missing_to_ref=True, samples=["B"])
    assert [s.sample for s in only_b.samples] == ["B"]


def test_ugt1a1_ta_repeat_representations(tmp_path):
    # the definition: chr2:233760233 CAT > C,CATAT,CATATAT (TA6/TA8/TA9); *28 = TA(8)
    norm = _vcf(tmp_path, [_rec("chr2", 233760233, "CAT", "CATAT", "0/1")], name="a.vcf")
    # a multi-allelic record with another ALT order
    multi = _vcf(tmp_path, [_rec("chr2", 233760233, "CAT", "C,CATAT", "0/2")], name="b.vcf")
    # not left-aligned: the same TA insertion written two bases to the right
    shifted = _vcf(tmp_path, [_rec("chr2", 233760235, "T", "TAT", "0/1")], name="c.vcf")
    for p in (norm, multi, shifted):
        res = call_vcf(p, genes=["UGT1A1"], missing_to_ref=True)
        assert res.samples[0].genes["UGT1A1"].diplotypes == [("*1", "*28")], p.name


def test_split_multiallelic_records(tmp_path):
    recs = [_rec("chr2", 233760233, "CAT", "C", "0/0"), _rec("chr2", 233760233, "CAT", "CATAT", "1/1")]
    res = call_vcf(_vcf(tmp_path, recs), genes=["UGT1A1"], missing_to_ref=True)
    assert res.samples[0].genes["UGT1A1"].diplotypes == [("*28", "*28")]


def test_phased_with_phase_set(tmp_path):
    recs = [
        "\t".join(["chr2", "233759924", ".", "C", "T", ".", "PASS", ".", "GT:PS", "1|0:100"]),
        "\t".join(["chr2", "233760233", ".", "CAT", "CATAT", ".", "PASS", ".", "GT:PS", "1|0:100"]),
    ]
    res = call_vcf(_vcf(tmp_path, recs), genes=["UGT1A1"], missing_to_ref=True)
    gc = res.samples[0].genes["UGT1A1"]
    assert gc.phased and gc.diplotypes == [("*1", "*80+*28")]


def test_grch37_refused_by_header(tmp_path):
    hdr = HEADER + "##contig=<ID=1,length=249250621>\n"
    p = _vcf(tmp_path, _star2_records(""), header=hdr)
    with pytest.raises(InputError, match="GRCh37"):
        read_pgx_vcf(p)
    hdr2 = HEADER + "##reference=file:///refs/human_g1k_v37.fasta\n"
    with pytest.raises(InputError, match="GRCh37"):
        read_pgx_vcf(_vcf(tmp_path, _star2_records(""), header=hdr2, name="y.vcf"))


def test_grch37_refused_by_reference_bases(tmp_path):
    # GRCh37 coordinates of GRCh38 positions carry other bases: most REFs disagree
    recs = [_rec("chr10", p, "T", "C", "0/1") for p in
            (94761900, 94762706, 94775367, 94781859, 94842866, 94942290)]
    with pytest.raises(InputError, match="GRCh37"):
        read_pgx_vcf(_vcf(tmp_path, recs))


def test_malformed_lines_name_line_and_column(tmp_path):
    bad_pos = _vcf(tmp_path, ["chr10\tabc\t.\tA\tG\t.\tPASS\t.\tGT\t0/1"], name="p.vcf")
    with pytest.raises(InputError) as e:
        read_pgx_vcf(bad_pos)
    assert "line 3" in str(e.value) and "POS" in str(e.value)
    bad_gt = _vcf(tmp_path, [_rec("chr10", 94781859, "G", "A", "0/x")], name="g.vcf")
    with pytest.raises(InputError, match=r"line 3, column 10 \(sample 1\)") as e:
        read_pgx_vcf(bad_gt)
    assert "S1" not in str(e.value)  # the column number, never the sample's name
    short = _vcf(tmp_path, ["chr10\t94781859\t.\tG\tA"], name="s.vcf")
    with pytest.raises(InputError, match="columns"):
        read_pgx_vcf(short)
    no_samples = tmp_path / "n.vcf"
    no_samples.write_text(HEADER + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    with pytest.raises(InputError, match="no sample columns"):
        read_pgx_vcf(no_samples)


def test_sample_without_calls_is_an_error(tmp_path):
    p = _vcf(tmp_path, [_rec("chr10", 94781859, "G", "A", "./.")])
    with pytest.raises(InputError, match="no genotype call"):
        call_vcf(p)
    # unrelated positions only: same error
    q = _vcf(tmp_path, [_rec("chr5", 1000, "G", "A", "0/1")], name="q.vcf")
    with pytest.raises(InputError, match="no genotype call"):
        call_vcf(q)


# --- REF checks against GRCh38 (issue #16) ---------------------------------------------------

def test_swapped_ref_alt_read_by_allele_sequence(tmp_path):
    # SNVs: REF written as the variant, GT 0/0 -> homozygous variant (*2/*2)
    swapped = [_rec("chr10", 94775367, "G", "A", "0/0"), _rec("chr10", 94781859, "A", "G", "0/0"),
               _rec("chr10", 94842866, "G", "A", "0/0")]
    with pytest.warns(PgxReferenceWarning, match=r"3 record\(s\) \(lines 3, 4, 5; genes CYP2C19\)"):
        geno = read_pgx_vcf(_vcf(tmp_path, swapped), genes=["CYP2C19"])
    assert [i["kind"] for i in geno.ref_issues["CYP2C19"]] == ["swapped"] * 3
    assert geno.build_check["ref_swapped"] == 3 and geno.build_check["ref_matches"] == 0
    with pytest.warns(PgxReferenceWarning):
        res = call_vcf(_vcf(tmp_path, swapped), genes=["CYP2C19"], missing_to_ref=True)
    gc = _cyp2c19(res)
    # rs3758581 G/G (the *1 backbone the *2 allele sits on; GRCh38 has the *38 base A)
    assert gc.diplotypes == [("*2", "*2")]
    assert sum("REF/ALT swapped" in w for w in gc.warnings) == 3


def test_ref_matching_neither_allele_is_unreadable_not_reference(tmp_path):
    recs = [_rec("chr10", 94775367, "A", "G", "0/1"), _rec("chr10", 94781859, "T", "C", "0/0"),
            _rec("chr10", 94842866, "A", "G", "1/1")]
    with pytest.warns(PgxReferenceWarning, match="cannot be read"):
        geno = read_pgx_vcf(_vcf(tmp_path, recs), genes=["CYP2C19"])
    assert [(i["kind"], i["position"], i["line"]) for i in geno.ref_issues["CYP2C19"]] == [
        ("mismatch", "chr10:94781859", 4)]
    assert len(geno.unreadable) == 1
    for missing_to_ref in (False, True):  # never filled in as reference
        with pytest.warns(PgxReferenceWarning):
            res = call_vcf(_vcf(tmp_path, recs), genes=["CYP2C19"], missing_to_ref=missing_to_ref)
        gc = _cyp2c19(res)
        assert gc.uncallable and not gc.diplotypes and not gc.no_data
        row = res.calls_table().iloc[0]
        assert row["diplotypes"] == "uncallable" and row["phenotype"] == ""
        assert "clopidogrel" not in set(res.recommendations_table()["drug"])


@pytest.mark.parametrize("line, build", [
    ("##contig=<ID=chr10,length=135534747>", "GRCh37"),
    ("##contig=<ID=10,assembly=GRCh37,length=1>", "GRCh37"),
    ("##reference=ucsc.hg19.fasta", "GRCh37"),
    ("##assembly=hg18", "NCBI36"),
    ("##reference=file:///refs/chm13v2.0.fa", "T2T"),
])
def test_other_builds_declared_in_the_header_are_refused(tmp_path, line, build):
    with pytest.raises(InputError, match=build) as e:
        read_pgx_vcf(_vcf(tmp_path, _star2_records(), header=HEADER + line + "\n"))
    assert "line 2" in str(e.value)


@pytest.mark.parametrize("line, status", [
    ("##contig=<ID=chr10,length=133797422>", "declared GRCh38"),
    ("##reference=file:///refs/GRCh38_full_analysis_set_plus_decoy_hla.fa", "declared GRCh38"),
    ("##reference=file:///data/lab37/ref.fa", "not checked"),  # "37" inside a word is no build
])
def test_build_declared_or_not(tmp_path, line, status):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        geno = read_pgx_vcf(_vcf(tmp_path, _star2_records(), header=HEADER + line + "\n"))
    assert geno.build_check["status"] == status
    assert any(issubclass(w.category, PgxBuildWarning) for w in caught) == (status == "not checked")


def test_truncated_bgzf_and_stale_index(tmp_path):
    from pmed.io.vcf.write import _bgzf_write

    text = HEADER + COLS + "\tS1\n" + "".join(r + "\n" for r in _star2_records())
    full = _bgzf_write(tmp_path / "a.vcf.gz", text.encode())
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(full.read_bytes()[:-28])  # every record there, the EOF block gone
    with pytest.raises(InputError, match="truncated: its end-of-file block is missing"):
        read_pgx_vcf(cut)
    # an index older than its VCF is not trusted: the whole file is read, with a warning
    idx = tmp_path / "a.vcf.gz.tbi"
    idx.write_bytes(b"stale")
    os.utime(idx, (1, 1))
    with pytest.warns(PmedWarning, match="older than the VCF"):
        res = call_vcf(full, genes=["CYP2C19"], missing_to_ref=True)
    assert _cyp2c19(res).diplotypes == [("*1", "*2")]


def _tabix(path):
    """Index a BGZF VCF with the htslib inside cyvcf2 (no tabix binary needed)."""
    import ctypes

    cyvcf2 = pytest.importorskip("cyvcf2")
    lib = ctypes.CDLL(cyvcf2.cyvcf2.__file__)
    try:
        conf = ctypes.c_void_p.in_dll(lib, "tbx_conf_vcf")
    except ValueError:
        pytest.skip("this cyvcf2 build does not export tbx_conf_vcf")
    lib.tbx_index_build.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    assert lib.tbx_index_build(str(path).encode(), 0, ctypes.addressof(conf)) == 0


def test_indexed_vcf_with_a_corrupt_block_is_refused(tmp_path):
    import struct

    from pmed.io.vcf.write import _bgzf_write

    filler = "".join(f"chr1\t{1000 + i}\t.\tA\tG\t.\tPASS\t.\tGT\t0/0\n" for i in range(3000))
    text = HEADER + COLS + "\tS1\n" + filler + "".join(r + "\n" for r in _star2_records())
    vcf = _bgzf_write(tmp_path / "a.vcf.gz", text.encode())
    _tabix(vcf)
    assert _cyp2c19(call_vcf(vcf, genes=["CYP2C19"], missing_to_ref=True)).diplotypes == [
        ("*1", "*2")]  # read through the index
    data = bytearray(vcf.read_bytes())
    second = struct.unpack("<H", data[16:18])[0] + 1  # the block holding the CYP2C19 records
    data[second + 40:second + 60] = bytes(20)
    vcf.write_bytes(bytes(data))
    os.utime(tmp_path / "a.vcf.gz.tbi")  # the index stays newer than the file
    # htslib ends the region early with only a message on stderr: the records would be lost
    with pytest.raises(InputError, match="htslib could not read the indexed VCF"):
        call_vcf(vcf, genes=["CYP2C19"], missing_to_ref=True)
