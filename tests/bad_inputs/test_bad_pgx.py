"""Bad inputs (issue #16) for ``pmed pgx call`` and :func:`pmed.genomics.pgx.run_pgx`.

Tiny VCFs written in each test at the GRCh38 CYP2C19 positions of PharmCAT's definitions:
rs12769205 (chr10:94775367 A>G), rs4244285 (chr10:94781859 G>A, the *2 variant) and rs3758581
(chr10:94842866 A>G; GRCh38 carries the *38 base, *1 and *2 carry G). The sample names
(``MRN…``) must never appear in a message.
"""

import gzip
import json
import os

import pandas as pd
import pytest
from badinput import bad_input, refused, run_cli

from pmed.errors import OptionError
from pmed.genomics.pgx import run_pgx

IDS = ["MRN0042731", "MRN0099120"]
HEAD = "##fileformat=VCFv4.2\n"
COLS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT"

# *2/*2 written the right way: REF is GRCh38, GT counts the ALT (G>A at rs4244285)
STAR2_HOM = [("chr10", 94775367, "A", "G", "1/1"), ("chr10", 94781859, "G", "A", "1/1"),
             ("chr10", 94842866, "A", "G", "1/1")]
# the same genotypes with REF and ALT swapped: REF is the sample's (variant) allele, GT 0/0
STAR2_SWAPPED = [("chr10", 94775367, "G", "A", "0/0"), ("chr10", 94781859, "A", "G", "0/0"),
                 ("chr10", 94842866, "G", "A", "0/0")]


def _vcf(tmp_path, records, *, samples=IDS[:1], header=HEAD, name="in.vcf"):
    lines = [COLS + "\t" + "\t".join(samples)]
    for chrom, pos, ref, alt, *gts in records:
        gts = gts if len(gts) == len(samples) else gts * len(samples)
        lines.append("\t".join([chrom, str(pos), ".", ref, alt, ".", "PASS", ".", "GT", *gts]))
    p = tmp_path / name
    p.write_text(header + "\n".join(lines) + "\n")
    return p


def _calls(out):
    return pd.read_csv(out / "calls.tsv", sep="\t", dtype=str, keep_default_na=False)


def _cyp2c19(out):
    calls = _calls(out)
    return calls[calls["gene"] == "CYP2C19"].iloc[0]


# ---------------------------------------------------------------------------------------------
# silent wrong answers
# ---------------------------------------------------------------------------------------------

@bad_input("silent")
def test_swapped_ref_alt_is_read_by_allele_and_flagged_never_normal(tmp_path, capsys):
    # REF/ALT swapped at the three CYP2C19 sites, GT 0/0: the sample is *2/*2 (Poor Metabolizer);
    # pmed used to ignore the records and, with --missing-to-ref, call *38/*38 Normal Metabolizer
    vcf = _vcf(tmp_path, STAR2_SWAPPED)
    out = tmp_path / "out"
    rc, text = run_cli(capsys, ["pgx", "call", vcf, "--out", out, "--missing-to-ref"])
    assert rc == 0, text
    row = _cyp2c19(out)
    assert (row["diplotypes"], row["phenotype"]) == ("*2/*2", "Poor Metabolizer")
    # never silently: the call, the console and pgx.json name each swapped position and line
    assert row["warnings"].count("REF/ALT swapped") == 3
    assert "chr10:94781859 (VCF line 4)" in row["warnings"]
    assert "3 record(s) (lines 3, 4, 5; genes CYP2C19) have REF/ALT swapped" in text
    js = json.loads((out / "pgx.json").read_text())
    assert [i["kind"] for i in js["ref_issues"]["CYP2C19"]] == ["swapped"] * 3
    # the same calls as the correctly written VCF, recommendations included
    good = tmp_path / "good"
    assert run_cli(capsys, ["pgx", "call", _vcf(tmp_path, STAR2_HOM, name="good.vcf"), "--out", good,
                            "--missing-to-ref"])[0] == 0
    recs = pd.read_csv(out / "recommendations.tsv", sep="\t", dtype=str)
    good_recs = pd.read_csv(good / "recommendations.tsv", sep="\t", dtype=str)
    assert sorted(recs["drug"]) == sorted(good_recs["drug"])
    assert recs.loc[recs["drug"] == "clopidogrel", "recommendation"].str.startswith("Avoid").any()


@bad_input("silent")
def test_ref_matching_neither_allele_makes_the_gene_not_callable(tmp_path, capsys):
    # rs4244285 with REF T (GRCh38 has G) and ALT C: which allele GT 0 stands for is unknown
    recs = [STAR2_HOM[0], ("chr10", 94781859, "T", "C", "0/0"), STAR2_HOM[2]]
    out = tmp_path / "out"
    rc, text = run_cli(capsys, ["pgx", "call", _vcf(tmp_path, recs), "--out", out, "--missing-to-ref"])
    assert rc == 0, text
    row = _cyp2c19(out)
    assert row["diplotypes"] == "uncallable" and row["phenotype"] == ""
    assert "REF T at chr10:94781859 (VCF line 4) is not the GRCh38 reference G" in row["warnings"]
    assert "neither the GRCh38 base nor one of their ALTs" in text
    recs = pd.read_csv(out / "recommendations.tsv", sep="\t", dtype=str)
    assert "clopidogrel" not in set(recs["drug"])  # no recommendation rests on the gene


@bad_input("silent")
def test_unknown_outside_call_allele_is_refused(tmp_path, capsys):
    vcf = _vcf(tmp_path, STAR2_HOM)
    oc = tmp_path / "outside.tsv"
    oc.write_text("# outside calls\nCYP2D6\t*1/*999\n")
    head = refused(capsys, tmp_path, ["pgx", "call", vcf, "--out", tmp_path / "out",
                                      "--outside-call", oc],
                   code=2, says=r"outside\.tsv: line 2: unknown CYP2D6 allele '\*999'",
                   out=tmp_path / "out", secrets=IDS)
    assert head.startswith("error")
    _, text = run_cli(capsys, ["pgx", "call", vcf, "--out", tmp_path / "out", "--outside-call", oc])
    assert "fix: CYP2D6 alleles pmed knows include *1, *2, *3" in text


# ---------------------------------------------------------------------------------------------
# misleading diagnoses: the genome build
# ---------------------------------------------------------------------------------------------

@bad_input("diagnosis")
@pytest.mark.parametrize("line", ["##contig=<ID=chr10,length=135534747>",
                                  "##contig=<ID=chr10,length=133797422,assembly=hg19>",
                                  "##reference=file:///refs/hs37d5.fa"])
def test_vcf_declaring_grch37_is_refused(tmp_path, capsys, line):
    vcf = _vcf(tmp_path, STAR2_HOM, header=HEAD + line + "\n")
    refused(capsys, tmp_path, ["pgx", "call", vcf, "--out", tmp_path / "out"], code=2,
            says=r"in\.vcf: line 2: .*GRCh37.*not GRCh38|contig 10 has its GRCh37 length",
            out=tmp_path / "out")


@bad_input("diagnosis")
def test_build_check_is_reported_unchecked_declared_or_confirmed(tmp_path, capsys):
    # three records, no build declared: GRCh38 cannot be confirmed -> said, not assumed
    out = tmp_path / "out"
    rc, text = run_cli(capsys, ["pgx", "call", _vcf(tmp_path, STAR2_HOM), "--out", out])
    assert rc == 0 and "GRCh38 cannot be checked" in text
    assert json.loads((out / "pgx.json").read_text())["build_check"]["status"] == "not checked"
    # six records carrying the GRCh38 REF confirm it: provenance.json says so
    more = STAR2_HOM + [("chr10", p, r, a, "0/0") for p, r, a in
                        ((94761900, "C", "T"), (94762706, "A", "G"), (94762712, "C", "T"))]
    rc, text = run_cli(capsys, ["pgx", "call", _vcf(tmp_path, more, name="b.vcf"), "--out", out])
    assert rc == 0 and "cannot be checked" not in text
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["build_check"]["status"] == "GRCh38 confirmed by reference bases"
    assert prov["build_check"]["ref_matches"] == 6
    # declared in the header
    hdr = HEAD + "##contig=<ID=chr10,length=133797422>\n"
    rc, _ = run_cli(capsys, ["pgx", "call", _vcf(tmp_path, STAR2_HOM, header=hdr, name="c.vcf"),
                             "--out", out])
    assert json.loads((out / "pgx.json").read_text())["build_check"]["status"] == "declared GRCh38"


@bad_input("diagnosis")
def test_swapped_records_are_not_taken_for_grch37(tmp_path, capsys):
    # six swapped records (every one an ALT equal to GRCh38) used to read as "looks like GRCh37"
    six = STAR2_SWAPPED + [("chr10", 94761900, "T", "C", "0/0"), ("chr10", 94762706, "G", "A", "0/0"),
                           ("chr10", 94762712, "T", "C", "0/0")]
    out = tmp_path / "out"
    rc, text = run_cli(capsys, ["pgx", "call", _vcf(tmp_path, six), "--out", out])
    assert rc == 0, text
    assert "GRCh37" not in text and "6 record(s)" in text
    assert json.loads((out / "pgx.json").read_text())["build_check"]["ref_swapped"] == 6


# ---------------------------------------------------------------------------------------------
# output folders that mix runs
# ---------------------------------------------------------------------------------------------

@bad_input("mixed")
def test_rerun_without_html_leaves_no_stale_sections(tmp_path, capsys):
    vcf = _vcf(tmp_path, STAR2_HOM, samples=IDS)
    out = tmp_path / "out"
    assert run_cli(capsys, ["pgx", "call", vcf, "--out", out, "--html"])[0] == 0
    assert sorted(p.name for p in out.glob("*.html")) == ["pgx_1.html", "pgx_2.html"]
    assert run_cli(capsys, ["pgx", "call", vcf, "--out", out, "--sample", IDS[1]])[0] == 0
    assert not list(out.glob("*.html"))
    assert sorted(p.name for p in out.iterdir()) == ["calls.tsv", "pgx.json", "provenance.json",
                                                     "recommendations.tsv"]
    assert set(_calls(out)["sample"]) == {IDS[1]}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


@bad_input("mixed")
def test_foreign_nonempty_folder_is_refused_before_the_vcf_is_read(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    # a malformed VCF: the folder is refused first, so the message is about the folder
    bad = tmp_path / "bad.vcf"
    bad.write_text(HEAD + COLS + "\tS\nchr10\tx\n")
    refused(capsys, tmp_path, ["pgx", "call", bad, "--out", out], code=2,
            says=r"results: the output folder is not empty and does not hold an earlier pgx output")
    assert (out / "notes.txt").read_text() == "mine\n"


# ---------------------------------------------------------------------------------------------
# broken files
# ---------------------------------------------------------------------------------------------

def _bgzf(tmp_path, text, name="in.vcf.gz"):
    from pmed.io.vcf.write import _bgzf_write

    return _bgzf_write(tmp_path / name, text.encode())


@bad_input("broken")
def test_truncated_bgzf_is_refused_even_at_a_block_boundary(tmp_path, capsys):
    records = "".join(f"chr1\t{1000 + i}\t.\tA\tG\t.\tPASS\t.\tGT\t0/0\n" for i in range(3000))
    records += "".join("\t".join([c, str(p), ".", r, a, ".", "PASS", ".", "GT", g]) + "\n"
                       for c, p, r, a, g in STAR2_HOM)
    full = _bgzf(tmp_path, HEAD + COLS + "\tS\n" + records, name="full.vcf.gz").read_bytes()
    first_block = int.from_bytes(full[16:18], "little") + 1
    # cut after the first BGZF block: gzip reads it cleanly, the CYP2C19 records are gone
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(full[:first_block])
    args = ["pgx", "call", cut, "--out", tmp_path / "out", "--missing-to-ref"]
    refused(capsys, tmp_path, args, code=2, says=r"cut\.vcf\.gz: .*truncated", out=tmp_path / "out")
    # cut in half, with a tabix index beside it (htslib used to hang on it: exit 130 at Ctrl-C)
    half = tmp_path / "half.vcf.gz"
    half.write_bytes(full[: len(full) // 2])
    (tmp_path / "half.vcf.gz.tbi").write_bytes(b"TBI\x01")
    refused(capsys, tmp_path, ["pgx", "call", half, "--out", tmp_path / "out"], code=2,
            says=r"half\.vcf\.gz: .*truncated", out=tmp_path / "out")


@bad_input("broken")
def test_damaged_index_and_cut_gzip_and_malformed_line(tmp_path, capsys):
    text = HEAD + COLS + "\tS\n" + "".join("\t".join([c, str(p), ".", r, a, ".", "PASS", ".", "GT", g])
                                           + "\n" for c, p, r, a, g in STAR2_HOM)
    vcf = _bgzf(tmp_path, text)
    idx = tmp_path / "in.vcf.gz.tbi"
    idx.write_bytes(b"not an index")
    st = vcf.stat()
    os.utime(idx, (st.st_atime + 10, st.st_mtime + 10))  # newer than the VCF: it is used
    refused(capsys, tmp_path, ["pgx", "call", vcf, "--out", tmp_path / "out"], code=2,
            says=r"in\.vcf\.gz: the indexed VCF cannot be read", out=tmp_path / "out")
    plain = tmp_path / "plain.vcf.gz"
    filler = "".join(f"chr1\t{1000 + i}\t.\tA\tG\t.\tPASS\t.\tGT\t0/0\n" for i in range(200))
    plain.write_bytes(gzip.compress((text + filler).encode())[:300])
    refused(capsys, tmp_path, ["pgx", "call", plain, "--out", tmp_path / "out"], code=2,
            says=r"plain\.vcf\.gz: .*truncated", out=tmp_path / "out")
    short = tmp_path / "short.vcf"
    short.write_text(text + "chr10\t94842866\t.\tA\n")
    refused(capsys, tmp_path, ["pgx", "call", short, "--out", tmp_path / "out"], code=2,
            says=r"short\.vcf: line 6: malformed VCF record: 4 columns", out=tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# identifiers in messages
# ---------------------------------------------------------------------------------------------

@bad_input("identifiers")
def test_messages_give_columns_and_counts_never_sample_names(tmp_path, capsys):
    dup = _vcf(tmp_path, STAR2_HOM, samples=[IDS[0], IDS[1], IDS[0]], name="dup.vcf")
    refused(capsys, tmp_path, ["pgx", "call", dup, "--out", tmp_path / "out"], code=2,
            says=r"line 2, column\(s\) 12: 1 sample column\(s\) repeat an earlier sample name",
            out=tmp_path / "out", secrets=IDS)
    long_gt = "0/" + "7" * 60
    bad = _vcf(tmp_path, [STAR2_HOM[0], ("chr10", 94781859, "G", "A", "0/1", long_gt)],
               samples=IDS, name="gt.vcf")
    refused(capsys, tmp_path, ["pgx", "call", bad, "--out", tmp_path / "out"], code=2,
            says=r"line 4, column 11 \(sample 2\): malformed genotype",
            out=tmp_path / "out", secrets=[*IDS, long_gt])
    ok = _vcf(tmp_path, STAR2_HOM, samples=IDS, name="ok.vcf")
    refused(capsys, tmp_path, ["pgx", "call", ok, "--out", tmp_path / "out", "--sample", "MRN0000001"],
            code=2, says=r"1 of the 1 requested sample\(s\) are not in the VCF",
            out=tmp_path / "out", secrets=[*IDS, "MRN0000001"])


# ---------------------------------------------------------------------------------------------
# option values
# ---------------------------------------------------------------------------------------------

@bad_input("options")
def test_cli_options_are_checked_before_the_vcf_is_read(tmp_path, capsys):
    bad = tmp_path / "bad.vcf"  # malformed: an option error must come first
    bad.write_text(HEAD + COLS + "\tS\nchr10\tx\n")
    refused(capsys, tmp_path, ["pgx", "call", bad, "--out", tmp_path / "out", "--sample", " "],
            code=2, says=r"--sample number 1 is empty")
    refused(capsys, tmp_path, ["pgx", "call", tmp_path, "--out", tmp_path / "out"], code=2,
            says=r"is a directory")
    folder = tmp_path / "oc"
    folder.mkdir()
    refused(capsys, tmp_path, ["pgx", "call", bad, "--outside-call", folder, "--out",
                               tmp_path / "out"], code=2, says=r"--outside-call.*is a directory")


@bad_input("options")
def test_api_options_raise_option_error_before_reading(tmp_path):
    nowhere = tmp_path / "absent.vcf"  # never opened: every check comes first
    for kwargs, says in (
        ({"samples": "MRN0042731"}, "samples must be a list"),
        ({"samples": [""]}, r"item\(s\) 1"),
        ({"genes": ["CYP2C19", "CYP2C99"]}, "1 unknown gene"),
        ({"missing_to_ref": "no"}, "missing_to_ref must be True or False"),
        ({"outside_calls": {"CYP2D6": "*1/*999"}}, r"unknown CYP2D6 allele '\*999'"),
        ({"outside_calls": {"HLA-B": "*57"}}, "two or more fields"),
    ):
        with pytest.raises(OptionError, match=says) as e:
            run_pgx(nowhere, **kwargs)
        assert "MRN0042731" not in str(e.value)
