"""Tests of the small VCF writer/reader and its BGZF output (pmed.io.vcf)."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed.errors import InputError
from pmed.io.vcf import BGZF_EOF, _bgzf_write, read_vcf, write_vcf

REPO = Path(__file__).resolve().parents[2]


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
@pytest.mark.parametrize("name", ["x.vcf", "x.vcf.gz"])
def test_round_trip_gives_same_dosages(tmp_path, name):
    variants, g, samples = _example()
    path = write_vcf(tmp_path / name, variants, g, samples)
    assert path == tmp_path / name
    got_variants, got = read_vcf(path)
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
def test_reads_unphased_haploid_multiallelic_and_other_format_fields(tmp_path):
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
    variants, d = read_vcf(path)
    assert variants.loc[1, "alt"] == "T,G"
    assert variants["id"].tolist() == ["rs1", "chr1:200:C:T,G", "rs3", "rs4"]
    assert d.loc["A"].tolist()[:3] == [1.0, 2.0, 1.0]
    assert d.loc["B"].tolist() == [2.0, 1.0, 0.0, 1.0]
    assert np.isnan(d.loc["C", "rs1"]) and np.isnan(d.loc["C", "rs3"])
    assert np.isnan(d.loc["A", "rs4"])  # partly missing → NaN
    assert d.loc["C", "rs4"] == 0.0  # haploid call


def test_reads_plain_gzip_and_sample_subset(tmp_path):
    lines = [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\t0/0"]
    path = tmp_path / "p.vcf.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    _, d = read_vcf(path, samples=["C", "A"])
    assert d.index.tolist() == ["C", "A"]
    assert d["rs1"].tolist() == [0.0, 1.0]


def test_reads_sites_only_vcf(tmp_path):
    path = _write_text(
        tmp_path / "s.vcf",
        [
            "##fileformat=VCFv4.2",
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
            "1\t5\t.\tA\tC\t.\t.\t.",
        ],
    )
    variants, d = read_vcf(path)
    assert len(variants) == 1 and d.shape == (0, 1)


def test_duplicate_ids_fall_back_to_coordinates(tmp_path):
    path = _write_text(
        tmp_path / "d.vcf",
        [
            *HEADER,
            "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\t0/0",
            "1\t100\trs1\tA\tT\t.\t.\t.\tGT\t0/1\t1/1\t0/0",
        ],
    )
    variants, d = read_vcf(path)
    assert variants["id"].tolist() == ["rs1", "1:100:A:T"]
    assert d.shape == (3, 2)


def test_reads_real_pharmcat_positions_file():
    path = _shared() / "data/pgx/pharmcat_v3.1.1/pharmcat_positions.vcf"
    if not path.exists():
        pytest.skip(f"reference file absent: {path} (set PMED_SHARED to the shared/ folder)")
    variants, d = read_vcf(path)
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


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found") as e:
        read_vcf(tmp_path / "absent.vcf")
    assert e.value.file == str(tmp_path / "absent.vcf") and e.value.fix


def test_missing_chrom_header(tmp_path):
    path = _write_text(tmp_path / "h.vcf", ["##fileformat=VCFv4.2", "1\t100\trs1\tA\tG\t.\t.\t."])
    with pytest.raises(InputError, match="#CHROM") as e:
        read_vcf(path)
    _check_error(e.value, path, 2)
    only_meta = _write_text(tmp_path / "h2.vcf", ["##fileformat=VCFv4.2", "##source=x"])
    with pytest.raises(InputError, match="#CHROM") as e:
        read_vcf(only_meta)
    _check_error(e.value, only_meta, 2)


def test_no_gt_in_format(tmp_path):
    path = _write_text(
        tmp_path / "f.vcf",
        [
            *HEADER,
            "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1\t0/0",
            "1\t200\trs2\tA\tG\t.\t.\t.\tDP\t3\t4\t5",
        ],
    )
    with pytest.raises(InputError, match="no GT") as e:
        read_vcf(path)
    _check_error(e.value, path, 5, "FORMAT")


def test_wrong_number_of_columns(tmp_path):
    path = _write_text(tmp_path / "c.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1"])
    with pytest.raises(InputError, match="expected 12 tab-separated columns") as e:
        read_vcf(path)
    _check_error(e.value, path, 4)
    spaces = _write_text(tmp_path / "s.vcf", [*HEADER, "1 100 rs1 A G . . . GT 0/1 0/1 0/0"])
    with pytest.raises(InputError, match="found 1") as e:
        read_vcf(spaces)
    _check_error(e.value, spaces, 4)


def test_bad_position_and_bad_genotype(tmp_path):
    path = _write_text(
        tmp_path / "p.vcf", [*HEADER, "1\tabc\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1\t0/0"]
    )
    with pytest.raises(InputError, match="POS") as e:
        read_vcf(path)
    _check_error(e.value, path, 4, "POS")
    path = _write_text(
        tmp_path / "g.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/2\t0/0"]
    )
    with pytest.raises(InputError, match="unreadable genotype") as e:
        read_vcf(path)
    _check_error(e.value, path, 4, "B")


def test_unknown_sample_and_corrupt_gzip(tmp_path):
    path = _write_text(
        tmp_path / "u.vcf", [*HEADER, "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1\t0/0"]
    )
    with pytest.raises(InputError, match="not in the VCF") as e:
        read_vcf(path, samples=["A", "Z"])
    _check_error(e.value, path, 3)
    good = gzip.compress(path.read_bytes())
    broken = tmp_path / "broken.vcf.gz"
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError) as e:
        read_vcf(broken)
    assert e.value.file == str(broken) and e.value.fix
