"""Fuzzed single-cell readers: whatever the bytes, a result or a pmed error, never another exception.

Inputs: random and mutated/truncated ``.h5ad`` files (a small AnnData written, then its bytes
corrupted), 10x matrix folders (``matrix.mtx``/``barcodes.tsv``/``features.tsv``, gzip or not,
well-formed, mutated or random), and CSV/TSV count tables. Deterministic (``derandomize``).
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("anndata")
pytest.importorskip("scanpy")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pmed.errors import PmedError  # noqa: E402
from pmed.omics import read_bulk, read_counts_table, read_omics  # noqa: E402

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(autouse=True, scope="module")
def _short_h5_check():
    """A damaged file that makes HDF5 loop is refused after this many seconds (default 120)."""
    import pmed.omics.readers as R

    old, R.H5AD_CHECK_TIMEOUT_S = R.H5AD_CHECK_TIMEOUT_S, 8.0
    yield
    R.H5AD_CHECK_TIMEOUT_S = old


def _outcome(fn, *args, **kwargs):
    """Call a reader: its result, or the PmedError it raised. Any other exception fails."""
    try:
        return fn(*args, **kwargs)
    except PmedError as e:
        assert str(e)  # the message renders
        return e


def _check_adata(res):
    if isinstance(res, PmedError):
        return
    X = res.X
    assert X.shape == (res.n_obs, res.n_vars) and res.n_obs > 0 and res.n_vars > 0
    assert np.isfinite(X.data).all() and (X.data >= 0).all()
    assert np.array_equal(X.data, np.round(X.data))
    assert res.obs_names.is_unique and res.var_names.is_unique


# -- byte mutations ---------------------------------------------------------------------------

_mutations = st.lists(
    st.tuples(st.sampled_from(["set", "truncate", "insert", "delete"]),
              st.floats(0.0, 1.0, allow_nan=False), st.binary(min_size=1, max_size=8)),
    min_size=1, max_size=4)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, where, payload in ops:
        i = int(where * len(b)) if b else 0
        if op == "set":
            b[i:i + len(payload)] = payload
        elif op == "truncate":
            del b[i:]
        elif op == "insert":
            b[i:i] = payload
        else:
            del b[i:i + len(payload)]
    return bytes(b)


# -- h5ad --------------------------------------------------------------------------------------

def _small_h5ad_bytes() -> bytes:
    import anndata as ad
    import pandas as pd
    from scipy import sparse

    rng = np.random.default_rng(0)
    X = sparse.csr_matrix(rng.poisson(1.5, size=(8, 5)).astype(np.float32))
    a = ad.AnnData(X=X, obs=pd.DataFrame({"batch": list("aabbaabb")},
                                         index=[f"c{i}" for i in range(8)]),
                   var=pd.DataFrame(index=[f"G{i}" for i in range(5)]))
    a.layers["counts"] = X.copy()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "a.h5ad"
        a.write_h5ad(p)
        return p.read_bytes()


_H5AD = _small_h5ad_bytes()


def test_small_h5ad_reads():
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.h5ad"
        p.write_bytes(_H5AD)
        a = read_omics(p)
        assert a.shape == (8, 5)


@FUZZ
@given(ops=_mutations)
def test_mutated_h5ad(ops):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.h5ad"
        p.write_bytes(_mutate(_H5AD, ops))
        _check_adata(_outcome(read_omics, p))


def test_h5ad_on_which_hdf5_loops_forever_is_an_input_error(monkeypatch):
    # found by the fuzzer: one byte inserted into the root group's attribute heap makes the HDF5
    # library loop without end on reading 'encoding-type' (a damaged heap free list)
    import pmed.omics.readers as R

    monkeypatch.setattr(R, "H5AD_CHECK_TIMEOUT_S", 3.0)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.h5ad"
        p.write_bytes(_H5AD[:2195] + b"\x14" + _H5AD[2195:])
        res = _outcome(read_omics, p)
        assert isinstance(res, PmedError)


@FUZZ
@given(data=st.binary(max_size=2048), head=st.booleans())
def test_random_h5ad(data, head):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.h5ad"
        # half the time start with HDF5's signature so that h5py looks further
        p.write_bytes((b"\x89HDF\r\n\x1a\n" if head else b"") + data)
        _check_adata(_outcome(read_omics, p))


# -- 10x folders -------------------------------------------------------------------------------

_name = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_line_lists = st.lists(_name, max_size=6)


@st.composite
def _tenx(draw):
    n_genes = draw(st.integers(0, 4))
    n_cells = draw(st.integers(0, 4))
    entries = draw(st.lists(st.tuples(st.integers(-1, n_genes + 1), st.integers(-1, n_cells + 1),
                                      st.one_of(st.integers(-3, 50),
                                                st.floats(allow_nan=True, allow_infinity=True))),
                            max_size=8))
    field = draw(st.sampled_from(["integer", "real", "pattern", "complex", "bogus", "INTEGER"]))
    fmt = draw(st.sampled_from(["coordinate", "coordinate", "array"]))
    obj = draw(st.sampled_from(["matrix", "matrix", "matrix", "vector"]))
    sym = draw(st.sampled_from(["general", "general", "symmetric", "skew-symmetric", "hermitian",
                                "odd"]))
    hdr_rows = n_genes + draw(st.sampled_from([0, 0, 0, 1, -1, 10**9]))
    hdr_cols = n_cells + draw(st.sampled_from([0, 0, 0, 1, -1]))
    # scipy allocates the declared entries before reading: over-declared counts must be refused
    hdr_nnz = len(entries) + draw(st.sampled_from([0, 0, 0, 1, -1, 10**11, 2**63]))
    lines = [f"%%MatrixMarket {obj} {fmt} {field} {sym}", "% comment"]
    if fmt == "coordinate":
        lines.append(f"{hdr_rows} {hdr_cols} {hdr_nnz}")
        lines += [f"{i} {j}" + ("" if field == "pattern" else f" {v}") for i, j, v in entries]
    else:
        lines.append(f"{hdr_rows} {hdr_cols}")
        lines += [str(v) for _, _, v in entries]
    mtx = ("\n".join(lines) + "\n").encode()
    barcodes = draw(st.one_of(st.just([f"BC{i}" for i in range(n_cells)]), _line_lists))
    genes = draw(st.one_of(st.just([f"ENSG{i}\tG{i}\tGene Expression" for i in range(n_genes)]),
                           _line_lists))
    files = {"matrix.mtx": mtx,
             "barcodes.tsv": ("\n".join(barcodes) + "\n").encode(errors="surrogatepass"),
             draw(st.sampled_from(["features.tsv", "genes.tsv"])):
                 ("\n".join(genes) + "\n").encode(errors="surrogatepass")}
    if draw(st.booleans()):  # corrupt one file's bytes
        victim = draw(st.sampled_from(sorted(files)))
        files[victim] = _mutate(files[victim], draw(_mutations))
    gz = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    return files, gz


@FUZZ
@given(case=_tenx())
def test_fuzzed_10x_folder(case):
    files, gz = case
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "mtx"
        folder.mkdir()
        for (name, data), z in zip(sorted(files.items()), gz, strict=True):
            if z:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
            else:
                (folder / name).write_bytes(data)
        _check_adata(_outcome(read_omics, folder))


def test_10x_header_with_huge_dimensions_is_refused_before_reading(tmp_path):
    folder = tmp_path / "mtx"
    folder.mkdir()
    (folder / "matrix.mtx").write_text("%%MatrixMarket matrix array real general\n"
                                       "100000000 100000000\n1\n")
    (folder / "barcodes.tsv").write_text("A\n")
    (folder / "features.tsv").write_text("E1\tG1\n")
    res = _outcome(read_omics, folder)
    assert isinstance(res, PmedError) and "100000000 rows" in str(res)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("header", [
    "%%MatrixMarket matrix coordinate real general\n1 1 99999999999\n1 1 3\n",
    "%%MatrixMarket matrix array pattern general\n1 1\n1\n",
    "%%MatrixMarket vector coordinate real general\n1 1\n1 3\n",
    # not an abort but memory corruption (a segfault later): a non-square symmetric dense matrix
    "%%MatrixMarket matrix array integer hermitian\n1 2\n4\n36\n",
])
def test_10x_headers_scipy_would_abort_on_are_input_errors(tmp_path, header, gz):
    # scipy's fast_matrix_market terminates the process when such a header comes from an open
    # (gzip) file: the reader must refuse them itself
    folder = tmp_path / "mtx"
    folder.mkdir()
    data = header.encode()
    if gz:
        (folder / "matrix.mtx.gz").write_bytes(gzip.compress(data))
    else:
        (folder / "matrix.mtx").write_bytes(data)
    (folder / "barcodes.tsv").write_text("A\n" if "hermitian" not in header else "A\nB\n")
    (folder / "features.tsv").write_text("E1\tG1\n")
    assert isinstance(_outcome(read_omics, folder), PmedError)


# -- CSV/TSV count tables ----------------------------------------------------------------------

_cell = st.one_of(st.integers(-5, 100).map(str), st.floats(allow_nan=True).map(str),
                  st.sampled_from(["", "NA", "x", " 3", "1e400", '"', "'", "\t", ",", "\r"]),
                  _name)


@st.composite
def _table(draw):
    sep = draw(st.sampled_from([",", "\t"]))
    n_rows, n_cols = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    header = [draw(_name) for _ in range(n_cols)]
    rows = [[draw(_name)] + [draw(_cell) for _ in range(n_cols - 1)] for _ in range(n_rows)]
    text = "\n".join(sep.join(r) for r in [header, *rows])
    data = text.encode(errors="surrogatepass")
    if draw(st.booleans()):
        data = _mutate(data, draw(_mutations))
    if draw(st.integers(0, 4)) == 0:
        data = draw(st.binary(max_size=200))
    return data, sep, draw(st.booleans())


@FUZZ
@given(case=_table(), orientation=st.sampled_from(["auto", "cells_by_genes", "genes_by_cells"]))
def test_fuzzed_counts_table(case, orientation):
    data, sep, gz = case
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / ("counts.csv" if sep == "," else "counts.tsv")
        p.write_bytes(gzip.compress(data, mtime=0) if gz else data)
        _check_adata(_outcome(read_counts_table, p, orientation=orientation))
        res = _outcome(read_bulk, p)
        if not isinstance(res, PmedError):
            assert res.index.is_unique and res.index.name == "sample_id"


def test_counts_table_text_numbers_and_bad_cells_are_located(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text('gene,c1,c2\nG1," 3",1\nG2,2,1\nG3,0,1\n')  # quoted number with a space
    a = read_counts_table(p, orientation="genes_by_cells")
    assert a.X[0, 0] == 3
    p.write_text("gene,c1,c2\nG1,1,1\nG2,2,inf\nG3,0,1\n")
    res = _outcome(read_counts_table, p)
    assert isinstance(res, PmedError) and "infinite" in str(res)
