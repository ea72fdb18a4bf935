"""Tests of the small VCF writer/reader and its BGZF output (pmed.io.vcf).

The reading tests run on both engines: the pure-Python parser (the reference) and cyvcf2 (when
the ``genomics`` extra is installed), which must give exactly the same tables.
"""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pmed.io.vcf as vcf_module
from pmed.errors import InputError, MissingDependencyError, OptionError, PmedWarning
from pmed.io.vcf import BGZF_EOF, _bgzf_write, read_vcf, write_vcf

REPO = Path(__file__).resolve().parents[2]

HAVE_CYVCF2 = importlib.util.find_spec("cyvcf2") is not None
needs_cyvcf2 = pytest.mark.skipif(
    not HAVE_CYVCF2, reason="cyvcf2 is not installed (pip install 'pmed[genomics]')"
)
#: The engines whose results must match: every reading test runs on each.
ENGINES = ["python", pytest.param("cyvcf2", marks=needs_cyvcf2)]
#: For refusals also "auto": a malformed file gives the pure parser's error whatever the engine.
ALL_ENGINES = ["python", "auto", pytest.param("cyvcf2", marks=needs_cyvcf2)]


def _shared() -> Path:
    return Path(os.environ.get("PMED_SHARED", REPO.parent / "shared"))


# ---------------------------------------------------------------------- fixtures
def _example(n_var: int = 6, n_samples: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    chroms = ["chr2", "chr1", "chrX", "chr10", "chr1", "chr2"]
    variants = pd.DataFrame(
        {
            "chrom": [chroms[i % len(chroms)] for i in range(n_var)],
            "pos": rng.integers(1_000, 50_000_000, n_var),
            "id": [f"rs{100 + i}" if i % 3 else "." for i in range(n_var)],
            "ref": ["A"] * n_var,
            "alt": ["G"] * n_var,
        }
    )
    g = rng.integers(0, 2, size=(n_var, n_samples, 2)).astype(np.int8)
    g[0, 0, :] = -1  # missing call
    g[1, 2, 1] = -1  # half-missing call
    samples = [f"S{i:03d}" for i in range(n_samples)]
    return variants, g, samples


def _expected_dosages(variants: pd.DataFrame, g: np.ndarray, samples: list[str]) -> pd.DataFrame:
    d = g.sum(axis=2).astype(float)
    d[(g < 0).any(axis=2)] = np.nan
    ids = [
        vid if vid != "." else f"{c}:{p}:{r}:{a}"
        for c, p, vid, r, a in variants[["chrom", "pos", "id", "ref", "alt"]].itertuples(
            index=False
        )
    ]
    return pd.DataFrame(d.T, index=pd.Index(samples, name="sample_id"), columns=ids)


def _write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


HEADER = [
    "##fileformat=VCFv4.2",
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC",
]


# ---------------------------------------------------------------------- round trip
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["x.vcf", "x.vcf.gz"])
def test_round_trip_gives_same_dosages(tmp_path, name, engine):
    variants, g, samples = _example()
    path = write_vcf(tmp_path / name, variants, g, samples)
    assert path == tmp_path / name
    got_variants, got = read_vcf(path, engine=engine)
    expected = _expected_dosages(variants, g, samples)
    # Records come back sorted by chromosome then position.
    order = sorted(
        range(len(variants)),
        key=lambda i: (
            ["chr1", "chr2", "chr10", "chrX"].index(variants.chrom[i]),
            variants.pos[i],
        ),
    )
    assert list(got.columns) == [expected.columns[i] for i in order]
    pd.testing.assert_frame_equal(got[expected.columns], expected)
    assert np.isnan(got.loc["S000", expected.columns[0]])  # missing → NaN
    assert np.isnan(got.loc["S002", expected.columns[1]])  # half-missing → NaN
    assert got_variants["pos"].dtype == np.int64
    assert list(got_variants.columns) == ["chrom", "pos", "id", "ref", "alt"]
    assert got_variants["id"].tolist() == list(got.columns)


def test_written_text_is_phased_vcf42_with_header_lines(tmp_path):
    variants, g, samples = _example()
    path = write_vcf(tmp_path / "x.vcf", variants, g, samples, source="unit", reference="GRCh38")
    text = path.read_text().splitlines()
    assert text[0] == "##fileformat=VCFv4.2"
    assert f"##fileDate={dt.date.today():%Y%m%d}" in text
    assert "##source=unit" in text and "##reference=GRCh38" in text
    assert "##contig=<ID=chr1,length=248956422>" in text
    assert "##contig=<ID=chrX,length=156040895>" in text
    assert any(t.startswith("##FORMAT=<ID=GT,") for t in text)
    records = [t.split("\t") for t in text if not t.startswith("#")]
    assert all(r[8] == "GT" for r in records)
    gts = {x for r in records for x in r[9:]}
    assert gts <= {"0|0", "0|1", "1|0", "1|1", ".|.", "0|.", "1|.", ".|0", ".|1"}
    assert ".|." in gts


def test_file_date_and_contigs_options(tmp_path):
    variants, g, samples = _example()
    path = write_vcf(
        tmp_path / "x.vcf", variants, g, samples, file_date=None, contigs={"chr1": 1000}
    )
    text = path.read_text()
    assert "##fileDate" not in text
    assert "##contig=<ID=chr1,length=1000>" in text
    assert "##contig=<ID=chr2>" in text  # declared, length unknown


def test_writer_refuses_bad_arrays(tmp_path):
    variants, g, samples = _example()
    with pytest.raises(ValueError, match="shape"):
        write_vcf(tmp_path / "x.vcf", variants, g[:, :3], samples)
    with pytest.raises(ValueError, match="columns"):
        write_vcf(tmp_path / "x.vcf", variants.drop(columns="ref"), g, samples)
    bad = g.copy()
    bad[0, 0, 0] = 2
    with pytest.raises(ValueError, match="allele indices"):
        write_vcf(tmp_path / "x.vcf", variants, bad, samples)
    with pytest.raises(ValueError, match="whitespace"):
        write_vcf(tmp_path / "x.vcf", variants, g, ["a b", *samples[1:]])
    assert not (tmp_path / "x.vcf").exists()


# ---------------------------------------------------------------------- BGZF
def _bgzf_blocks(data: bytes) -> list[tuple[int, int]]:
    """(block size, uncompressed size) of every block, checking each header on the way."""
    blocks = []
    off = 0
    while off < len(data):
        id1, id2, cm, flg, _mtime, _xfl, _os, xlen = struct.unpack_from("<4BI2BH", data, off)
        assert (id1, id2, cm) == (0x1F, 0x8B, 8), f"bad gzip magic at offset {off}"
        assert flg & 4, "FEXTRA flag missing"
        extra = data[off + 12 : off + 12 + xlen]
        bsize = None
        i = 0
        while i < len(extra):
            si1, si2, slen = struct.unpack_from("<2BH", extra, i)
            if (si1, si2) == (66, 67):
                assert slen == 2
                (bsize,) = struct.unpack_from("<H", extra, i + 4)
            i += 4 + slen
        assert bsize is not None, f"no BC subfield in the block at offset {off}"
        size = bsize + 1
        (isize,) = struct.unpack_from("<I", data, off + size - 4)
        assert isize <= 65536
        blocks.append((size, isize))
        off += size
    assert off == len(data), "blocks do not tile the file"
    return blocks


def test_bgzf_structure_and_eof_marker(tmp_path):
    variants, g, samples = _example(n_var=400, n_samples=300)  # ~1 MB of text: many blocks
    path = write_vcf(tmp_path / "big.vcf.gz", variants, g, samples)
    data = path.read_bytes()
    blocks = _bgzf_blocks(data)
    assert len(blocks) > 5
    assert data[-28:] == BGZF_EOF
    assert blocks[-1] == (28, 0)
    assert all(isize <= 0xFF00 for _, isize in blocks)
    plain = write_vcf(tmp_path / "big.vcf", variants, g, samples).read_bytes()
    with gzip.open(path, "rb") as fh:  # the stdlib reads it as ordinary multi-member gzip
        assert fh.read() == plain


def test_bgzf_incompressible_and_empty_data(tmp_path):
    payload = np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    path = _bgzf_write(tmp_path / "r.gz", payload)
    data = path.read_bytes()
    assert all(size <= 65536 for size, _ in _bgzf_blocks(data))
    assert gzip.decompress(data) == payload
    empty = _bgzf_write(tmp_path / "e.gz", b"").read_bytes()
    assert empty == BGZF_EOF


def test_same_input_gives_identical_bytes(tmp_path):
    variants, g, samples = _example()
    a = write_vcf(tmp_path / "a.vcf.gz", variants, g, samples, file_date=None).read_bytes()
    b = write_vcf(tmp_path / "b.vcf.gz", variants, g, samples, file_date=None).read_bytes()
    assert a == b


@pytest.mark.parametrize(
    "tool, args",
    [
        ("bgzip", ["-t"]),
        ("tabix", ["-f", "-p", "vcf"]),
        ("bcftools", ["view", "-H"]),
    ],
)
def test_external_htslib_tools_accept_the_output(tmp_path, tool, args):
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not on PATH (install htslib/bcftools to run this validation)")
    variants, g, samples = _example(n_var=300, n_samples=200)
    path = write_vcf(tmp_path / "x.vcf.gz", variants, g, samples)
    res = subprocess.run([exe, *args, str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    if tool == "tabix":
        assert Path(str(path) + ".tbi").exists()
    if tool == "bcftools":
        assert len(res.stdout.splitlines()) == len(variants)


# ---------------------------------------------------------------------- reading variants
@pytest.mark.parametrize("engine", ENGINES)
def test_reads_unphased_haploid_multiallelic_and_other_format_fields(tmp_path, engine):
    path = _write_text(
        tmp_path / "m.vcf",
        [
            *HEADER,
            "chr1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\t./.",
            "chr1\t200\t.\tC\tT,G\t.\t.\t.\tGT:DP\t1/2:10\t0|2:3\t0/0:7",
            "chrX\t300\trs3\tG\tA\t.\t.\t.\tDP:GT\t5:1\t5:0\t5:.",
            "chr2\t400\trs4\tT\tC\t.\t.\t.\tGT\t0|.\t1|0\t0",
        ],
    )
    variants, d = read_vcf(path, engine=engine)
    assert variants.loc[1, "alt"] == "T,G"
    assert variants["id"].tolist() == ["rs1", "chr1:200:C:T,G", "rs3", "rs4"]
    assert d.loc["A"].tolist()[:3] == [1.0, 2.0, 1.0]
    assert d.loc["B"].tolist() == [2.0, 1.0, 0.0, 1.0]
    assert np.isnan(d.loc["C", "rs1"]) and np.isnan(d.loc["C", "rs3"])
    assert np.isnan(d.loc["A", "rs4"])  # partly missing → NaN
    assert d.loc["C", "rs4"] == 0.0  # haploid call


@pytest.mark.parametrize("engine", ENGINES)
def test_reads_plain_gzip_and_sample_subset(tmp_path, engine):
    lines = [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\t0/0"]
    path = tmp_path / "p.vcf.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    _, d = read_vcf(path, samples=["C", "A"], engine=engine)
    assert d.index.tolist() == ["C", "A"]
    assert d["rs1"].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_reads_sites_only_vcf(tmp_path, engine):
    path = _write_text(
        tmp_path / "s.vcf",
        [
            "##fileformat=VCFv4.2",
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
            "1\t5\t.\tA\tC\t.\t.\t.",
        ],
    )
    variants, d = read_vcf(path, engine=engine)
    assert len(variants) == 1 and d.shape == (0, 1)


@pytest.mark.parametrize("engine", ENGINES)
def test_duplicate_ids_fall_back_to_coordinates(tmp_path, engine):
    path = _write_text(
        tmp_path / "d.vcf",
        [
            *HEADER,
            "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\t0/0",
            "1\t100\trs1\tA\tT\t.\t.\t.\tGT\t0/1\t1/1\t0/0",
        ],
    )
    variants, d = read_vcf(path, engine=engine)
    assert variants["id"].tolist() == ["rs1", "1:100:A:T"]
    assert d.shape == (3, 2)


@pytest.mark.parametrize("engine", ENGINES)
def test_reads_real_pharmcat_positions_file(engine):
    path = _shared() / "data/pgx/pharmcat_v3.1.1/pharmcat_positions.vcf"
    if not path.exists():
        pytest.skip(f"reference file absent: {path} (set PMED_SHARED to the shared/ folder)")
    variants, d = read_vcf(path, engine=engine)
    assert len(variants) == 1202 and d.shape == (1, 1202)
    assert (variants["alt"].str.contains(",")).any()  # multi-allelic sites kept, comma-joined
    assert (d.to_numpy() == 0).all()  # the file is all 0/0 reference calls
    row = variants.set_index("id").loc["rs4244285"]
    assert (row["chrom"], row["pos"], row["ref"], row["alt"]) == ("chr10", 94781859, "G", "A")


# ---------------------------------------------------------------------- refusals
def _check_error(err: InputError, path: Path, line: int, column: str | None = None):
    assert err.file == str(path)
    assert err.where is not None and f"line {line}" in err.where
    if column:
        assert f"column {column}" in err.where
    assert err.fix
    assert str(path) in str(err) and "fix:" in str(err)


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_missing_file(tmp_path, engine):
    with pytest.raises(InputError, match="not found") as e:
        read_vcf(tmp_path / "absent.vcf", engine=engine)
    assert e.value.file == str(tmp_path / "absent.vcf") and e.value.fix


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_missing_chrom_header(tmp_path, engine):
    path = _write_text(tmp_path / "h.vcf", ["##fileformat=VCFv4.2", "1\t100\trs1\tA\tG\t.\t.\t."])
    with pytest.raises(InputError, match="#CHROM") as e:
        read_vcf(path, engine=engine)
    _check_error(e.value, path, 2)
    only_meta = _write_text(tmp_path / "h2.vcf", ["##fileformat=VCFv4.2", "##source=x"])
    with pytest.raises(InputError, match="#CHROM") as e:
        read_vcf(only_meta, engine=engine)
    _check_error(e.value, only_meta, 2)


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_no_gt_in_format(tmp_path, engine):
    path = _write_text(
        tmp_path / "f.vcf",
        [
            *HEADER,
            "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1\t0/0",
            "1\t200\trs2\tA\tG\t.\t.\t.\tDP\t3\t4\t5",
        ],
    )
    with pytest.raises(InputError, match="no GT") as e:
        read_vcf(path, engine=engine)
    _check_error(e.value, path, 5, "FORMAT")


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_wrong_number_of_columns(tmp_path, engine):
    path = _write_text(tmp_path / "c.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1"])
    with pytest.raises(InputError, match="expected 12 tab-separated columns") as e:
        read_vcf(path, engine=engine)
    _check_error(e.value, path, 4)
    spaces = _write_text(tmp_path / "s.vcf", [*HEADER, "1 100 rs1 A G . . . GT 0/1 0/1 0/0"])
    with pytest.raises(InputError, match="found 1") as e:
        read_vcf(spaces, engine=engine)
    _check_error(e.value, spaces, 4)


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_bad_position_and_bad_genotype(tmp_path, engine):
    path = _write_text(
        tmp_path / "p.vcf", [*HEADER, "1\tabc\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1\t0/0"]
    )
    with pytest.raises(InputError, match="POS") as e:
        read_vcf(path, engine=engine)
    _check_error(e.value, path, 4, "POS")
    path = _write_text(
        tmp_path / "p2.vcf", [*HEADER, "1\t" + "9" * 30 + "\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1\t0/0"]
    )
    with pytest.raises(InputError, match="POS has 30 digits") as e:
        read_vcf(path, engine=engine)
    _check_error(e.value, path, 4, "POS")
    path = _write_text(
        tmp_path / "g.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/2\t0/0"]
    )
    with pytest.raises(InputError, match="unreadable genotype") as e:
        read_vcf(path, engine=engine)
    _check_error(e.value, path, 4, "B")
    path = _write_text(  # a Unicode digit: isdigit() says yes, int() says no
        tmp_path / "u.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t\u00b2/0\t0/0"]
    )
    with pytest.raises(InputError, match="unreadable genotype") as e:
        read_vcf(path, engine=engine)
    _check_error(e.value, path, 4, "B")


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_unknown_sample_and_corrupt_gzip(tmp_path, engine):
    path = _write_text(
        tmp_path / "u.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1\t0/0"]
    )
    with pytest.raises(InputError, match="not in the VCF") as e:
        read_vcf(path, samples=["A", "Z"], engine=engine)
    _check_error(e.value, path, 3)
    good = gzip.compress(path.read_bytes())
    broken = tmp_path / "broken.vcf.gz"
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError) as e:
        read_vcf(broken, engine=engine)
    assert e.value.file == str(broken) and e.value.fix


# ---------------------------------------------------------------------- engines agree
def _assert_same_tables(a, b) -> None:
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    pd.testing.assert_frame_equal(a[1], b[1], check_exact=True)


def _outcome(path: Path, engine: str, samples=None):
    """The tables, or the text of the InputError; warnings recorded, not raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PmedWarning)
        try:
            return read_vcf(path, samples=samples, engine=engine)
        except InputError as e:
            return str(e)


#: The text VCFs the reading tests above write, plus haploid, triploid, ALT "." and GT:DP cases.
TEXT_VCFS = {
    "m.vcf": [
        *HEADER,
        "chr1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\t./.",
        "chr1\t200\t.\tC\tT,G\t.\t.\t.\tGT:DP\t1/2:10\t0|2:3\t0/0:7",
        "chrX\t300\trs3\tG\tA\t.\t.\t.\tDP:GT\t5:1\t5:0\t5:.",
        "chr2\t400\trs4\tT\tC\t.\t.\t.\tGT\t0|.\t1|0\t0",
    ],
    "d.vcf": [
        *HEADER,
        "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\t0/0",
        "1\t100\trs1\tA\tT\t.\t.\t.\tGT\t0/1\t1/1\t0/0",
    ],
    "s.vcf": [
        "##fileformat=VCFv4.2",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
        "1\t5\t.\tA\tC\t.\t.\t.",
    ],
    "ploidy.vcf": [
        *HEADER[:2],
        "##contig=<ID=chr7,length=159345973>",
        HEADER[2],
        "chr7\t10\t.\tA\t.\t.\tPASS\tDP=4\tGT\t0\t.\t0/0",
        "chr7\t20\trs2\tA\tC,G,T\t50\tq10\t.\tGT:DP\t3/3:1\t.:2\t0/1/2",
        "chrM\t30\trs3\tA\tC\t.\t.\t.\tGT\t1\t0\t.",
        "chr7\t40\trs2\tA\t<DEL>\t.\t.\t.\tGT:GQ\t./1:.\t0|1\t1|.:4",
        "chr7\t50\t.\tT\tA\t.\t.\t.\tDP:GT\t.\t5\t7:1/1",
    ],
}


def _every_test_vcf(d: Path) -> list[Path]:
    paths = []
    variants, g, samples = _example()
    for name in ("x.vcf", "x.vcf.gz"):
        paths.append(write_vcf(d / name, variants, g, samples))
    variants, g, samples = _example(n_var=400, n_samples=300)
    paths.append(write_vcf(d / "big.vcf.gz", variants, g, samples))
    again = variants[:5].assign(alt="T")  # repeated IDs (and positions) of other records
    paths.append(write_vcf(d / "dup.vcf", pd.concat([variants[:5], again]),
                           np.concatenate([g[:5], g[:5]]), samples))
    multi = variants.assign(alt=np.where(np.arange(len(variants)) % 5 == 0, "G,T,C", "G"))
    g3 = g.copy()
    g3[::5] += np.random.default_rng(3).integers(0, 2, g3[::5].shape) * (g3[::5] >= 0)
    paths.append(write_vcf(d / "multi.vcf.gz", multi, g3, samples))
    for name, lines in TEXT_VCFS.items():
        paths.append(_write_text(d / name, lines))
    plain = d / "p.vcf.gz"
    plain.write_bytes(gzip.compress(("\n".join(TEXT_VCFS["d.vcf"][:4]) + "\n").encode()))
    paths.append(plain)
    return paths


@needs_cyvcf2
def test_engines_agree_on_every_test_vcf(tmp_path):
    for path in _every_test_vcf(tmp_path):
        python = read_vcf(path, engine="python")
        _assert_same_tables(python, read_vcf(path, engine="cyvcf2"))
        _assert_same_tables(python, read_vcf(path, engine="auto"))
        ids = python[1].index.tolist()
        if ids:  # a subset in another order
            subset = ids[::-2]
            _assert_same_tables(read_vcf(path, samples=subset, engine="python"),
                                read_vcf(path, samples=subset, engine="cyvcf2"))


#: Small real VCFs: PharmCAT's (phased, unphased, missing, multi-allelic, multi-sample, phase
#: sets, undeclared INFO keys) and the CINECA synthetic cohort (2,504 samples, bgzipped).
SHARED_VCFS = [
    "pgx/pharmcat_v3.1.1/pharmcat_positions.vcf",
    "pgx/pharmcat_v3.1.1/test/Sample_1.preprocessed.vcf",
    "pgx/pharmcat_v3.1.1/test/haplotype/VcfSampleReaderTest-multisample.vcf",
    "pgx/pharmcat_v3.1.1/test/haplotype/VcfReaderTest-phaseSet.vcf",
    "pgx/pharmcat_v3.1.1/test/haplotype/NamedAlleleMatcher-combinationPhased.vcf",
    "pgx/pharmcat_v3.1.1/test/haplotype/cyp2c19/s1s17s1s4bmissingmore.vcf",
    "prs/cineca/cineca_synthetic_subset.vcf.gz",
]


@needs_cyvcf2
@pytest.mark.parametrize("rel", SHARED_VCFS)
def test_engines_agree_on_real_vcfs(rel):
    path = _shared() / "data" / rel
    if not path.exists():
        pytest.skip(f"reference file absent: {path} (set PMED_SHARED to the shared/ folder)")
    python = read_vcf(path, engine="python")
    _assert_same_tables(python, read_vcf(path, engine="cyvcf2"))


@needs_cyvcf2
def test_real_bad_allele_gives_the_pure_parsers_error():
    path = _shared() / "data/pgx/pharmcat_v3.1.1/test/haplotype/VcfReaderTest-badAllele.vcf"
    if not path.exists():
        pytest.skip(f"reference file absent: {path} (set PMED_SHARED to the shared/ folder)")
    texts = {_outcome(path, engine) for engine in ("python", "auto", "cyvcf2")}
    assert len(texts) == 1 and "unreadable genotype '0/2'" in texts.pop()


def _mutations(data: bytes, rng: np.random.Generator, n: int):
    alphabet = b"0123456789./|\t:\n#,;=ACGTx\r "
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(0, len(b)))
            kind = rng.integers(0, 4)
            if kind == 0:
                b[i] = alphabet[rng.integers(0, len(alphabet))]
            elif kind == 1:
                b.insert(i, alphabet[rng.integers(0, len(alphabet))])
            elif kind == 2:
                del b[i]
            else:
                del b[i : i + int(rng.integers(1, 30))]
        yield bytes(b)


@needs_cyvcf2
def test_mutated_files_read_alike_or_fail_alike(tmp_path):
    """Whatever the bytes, "auto" gives what the pure parser gives: its tables or its error text;
    "cyvcf2" gives the same tables or an InputError."""
    variants, g, samples = _example(n_var=8, n_samples=4, seed=5)
    bases = [
        write_vcf(tmp_path / "base.vcf", variants, g, samples, file_date=None).read_bytes(),
        ("\n".join(TEXT_VCFS["ploidy.vcf"]) + "\n").encode(),
    ]
    rng = np.random.default_rng(2024)
    n_read = 0
    for k, data in enumerate(m for base in bases for m in _mutations(base, rng, 40)):
        path = tmp_path / f"m{k}.vcf"
        path.write_bytes(gzip.compress(data) if k % 3 == 0 else data)
        python = _outcome(path, "python")
        auto = _outcome(path, "auto")
        fast = _outcome(path, "cyvcf2")
        if isinstance(python, str):
            assert auto == python and fast == python, (k, python, auto, fast)
            continue
        n_read += 1
        _assert_same_tables(python, auto)
        if not isinstance(fast, str):
            _assert_same_tables(python, fast)
    assert 0 < n_read < 80  # some mutations leave a readable file, most do not


# ---------------------------------------------------------------------- engine choice
def test_unknown_engine_is_an_option_error(tmp_path):
    path = _write_text(tmp_path / "d.vcf", TEXT_VCFS["d.vcf"])
    with pytest.raises(OptionError, match="engine"):
        read_vcf(path, engine="htslib")


def test_without_cyvcf2_auto_reads_and_cyvcf2_names_the_extra(tmp_path, monkeypatch):
    path = _write_text(tmp_path / "d.vcf", TEXT_VCFS["d.vcf"])
    expected = read_vcf(path, engine="python")
    monkeypatch.setitem(sys.modules, "cyvcf2", None)  # as if not installed
    _assert_same_tables(expected, read_vcf(path))
    with pytest.raises(MissingDependencyError, match="cyvcf2") as e:
        read_vcf(path, engine="cyvcf2")
    assert "genomics" in str(e.value)


@needs_cyvcf2
def test_auto_reads_through_cyvcf2(tmp_path, monkeypatch):
    path = write_vcf(tmp_path / "x.vcf.gz", *_example())
    expected = read_vcf(path, engine="python")

    def refuse(*args, **kwargs):
        raise AssertionError("the pure-Python parser was used")

    monkeypatch.setattr(vcf_module.read, "_read_vcf_python", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same_tables(expected, read_vcf(path))


@needs_cyvcf2
def test_file_outside_the_cyvcf2_checks(tmp_path):
    """CRLF line ends: "auto" reads it with the pure parser, silently; "cyvcf2" says why not."""
    path = tmp_path / "crlf.vcf"
    path.write_bytes(("\r\n".join(TEXT_VCFS["d.vcf"]) + "\r\n").encode())
    expected = read_vcf(path, engine="python")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same_tables(expected, read_vcf(path))
    with pytest.raises(InputError, match="cyvcf2 cannot read this file: a carriage return") as e:
        read_vcf(path, engine="cyvcf2")
    assert e.value.file == str(path) and "engine='python'" in e.value.fix


@needs_cyvcf2
def test_file_htslib_refuses_falls_back_with_a_warning(tmp_path):
    """'0//1' is a missing call to the pure parser; htslib refuses it: a warning, same tables."""
    path = _write_text(
        tmp_path / "w.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0//1\t1/1\t0/0"]
    )
    expected = read_vcf(path, engine="python")
    assert np.isnan(expected[1].loc["A", "rs1"])
    with pytest.warns(PmedWarning, match="cyvcf2 could not read"):
        got = read_vcf(path)
    _assert_same_tables(expected, got)


@needs_cyvcf2
def test_record_without_any_gt_value_is_left_to_the_pure_parser(tmp_path):
    """No sample has the GT subfield: htslib would exit the process; the pure parser reads NaN."""
    path = _write_text(
        tmp_path / "nogt.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tDP:GT\t5\t.\t7"]
    )
    expected = read_vcf(path, engine="python")
    assert expected[1]["rs1"].isna().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same_tables(expected, read_vcf(path))
    with pytest.raises(InputError, match="no sample has a GT value"):
        read_vcf(path, engine="cyvcf2")
