"""Target variant tables: one row per ALT allele, compact columns."""

import numpy as np
import pandas as pd
import pytest

from pmed.genomics.prs.targets import VARIANT_COLUMNS, _explode_alts, _positions


def test_multiallelic_sites_get_one_row_per_alt_allele():
    df = pd.DataFrame({"chr": ["chr1", "1", "X"], "pos": [10, 20, 30], "id": ["a", "b", "c"],
                       "ref": ["A", "C", "G"], "alt": ["G", "T,G", "A"]})
    v = _explode_alts(df)
    assert list(v.columns) == VARIANT_COLUMNS
    assert v["chr"].tolist() == ["1", "1", "1", "X"]
    assert v["alt"].tolist() == ["G", "T", "G", "A"]
    assert v["var_idx"].tolist() == [0, 1, 1, 2] and v["allele_idx"].tolist() == [1, 1, 2, 1]
    assert v["n_alt"].tolist() == [1, 2, 2, 1]
    assert v["pos"].dtype == np.int32 and v["var_idx"].dtype == np.int32


def test_positions_beyond_int32_are_kept():
    assert _positions(np.array([1, 2**31 + 5])).dtype == np.int64
    assert _positions(np.array([1, 248_956_422])).dtype == np.int32


# ---------------------------------------------------------------------- bad inputs (issue #16)
def _plink2(d, samples, *, psam_bom=False, pvar_bom=False, header=True):
    """A PLINK 2 fileset of two variants; the .pgen in PLINK 1 layout (pgenlib's mode 0x01)."""
    n = len(samples)
    data = bytearray(b"\x6c\x1b\x01")
    for _ in range(2):  # every sample heterozygous (code 0b10)
        data += bytes([0b10101010]) * ((n + 3) // 4)
    (d / "g.pgen").write_bytes(bytes(data))
    pvar = "#CHROM\tPOS\tID\tREF\tALT\n1\t100\trs1\tA\tG\n1\t200\trs2\tC\tT\n"
    (d / "g.pvar").write_bytes((b"\xef\xbb\xbf" if pvar_bom else b"") + pvar.encode())
    psam = ("#FID\tIID\n" if header else "") + "".join(f"F{s}\t{s}\n" for s in samples)
    (d / "g.psam").write_bytes((b"\xef\xbb\xbf" if psam_bom else b"") + psam.encode())
    return d / "g.pgen"


def test_bom_psam_and_pvar_are_read_as_without_it(tmp_path):
    from pmed.genomics.prs import open_target

    t = open_target(_plink2(tmp_path, ["MRN1", "MRN2"], psam_bom=True, pvar_bom=True))
    assert t.samples["IID"].tolist() == ["MRN1", "MRN2"]
    assert t.samples["FID"].tolist() == ["FMRN1", "FMRN2"]
    assert t.variants["id"].tolist() == ["rs1", "rs2"] and t.variants["pos"].tolist() == [100, 200]
    out = np.empty((2, 2), np.int8)
    t.read_alt_dosages(np.array([0, 1]), np.array([1, 1]), out)
    assert out.tolist() == [[1, 1], [1, 1]]


@pytest.mark.parametrize("header", [True, False])
def test_duplicate_sample_ids_give_lines_not_ids(tmp_path, header):
    from pmed.errors import InputError
    from pmed.genomics.prs import open_target

    ids = ["MRN1", "MRN2", "MRN1", "MRN3", "MRN2"]
    with pytest.raises(InputError) as e:
        open_target(_plink2(tmp_path, ids, header=header))
    msg = str(e.value)
    first = 2 if header else 1
    assert f"g.psam: lines {first}, {first + 1}, {first + 2}, {first + 4}: 2 sample ID(s) appear " \
           "more than once (4 samples)" in msg
    assert "MRN" not in msg


def test_in_memory_target_with_duplicate_ids_is_refused():
    from pmed.errors import InputError
    from pmed.genomics.prs.targets import ArrayTarget

    v = pd.DataFrame({"chr": ["1"], "pos": [10], "id": ["v"], "ref": ["A"], "alt": ["G"]})
    with pytest.raises(InputError, match=r"samples 1, 2: 1 sample ID\(s\)"):
        ArrayTarget(v, np.zeros((1, 2), np.int8), ["MRN9", "MRN9"])


def test_missing_population_labels_are_counted_not_named(tmp_path):
    from types import SimpleNamespace

    from pmed.errors import InputError
    from pmed.genomics.prs.reference import read_populations

    ref = SimpleNamespace(path=tmp_path / "ref.pgen",
                          samples=pd.DataFrame({"IID": ["MRN1", "MRN2", "MRN3", "MRN4"]}))
    table = tmp_path / "pops.tsv"
    table.write_text("IID\tSuperPop\nMRN1\tEUR\nMRN3\tAFR\n")
    with pytest.raises(InputError) as e:
        read_populations(ref, table, "SuperPop")
    msg = str(e.value)
    assert "2 of the 4 reference samples have no population label" in msg
    assert "reference samples number 2, 4" in msg and "MRN" not in msg
