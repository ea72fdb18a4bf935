"""Readers: h5ad, 10x folder and .h5, CSV/TSV counts, bulk tables, metadata joins, clear errors."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.io import mmwrite

pytest.importorskip("anndata")
pytest.importorskip("scanpy")

from pmed.errors import InputError, ValidationError  # noqa: E402
from pmed.omics import (  # noqa: E402
    check_obs_key,
    join_metadata,
    read_10x,
    read_bulk,
    read_counts_table,
    read_h5ad,
    read_omics,
)


def _counts(n_cells=6, n_genes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.poisson(2.0, size=(n_cells, n_genes)).astype(np.float32)


def _write_10x(folder, X, *, genes=None, barcodes=None, gz=True, v3=True):
    folder.mkdir(parents=True, exist_ok=True)
    n_cells, n_genes = X.shape
    genes = genes if genes is not None else [f"G{i}" for i in range(n_genes)]
    barcodes = barcodes if barcodes is not None else [f"AAAC{i}-1" for i in range(n_cells)]
    op = (lambda p: gzip.open(p, "wt")) if gz else (lambda p: open(p, "w"))  # noqa: SIM115
    sfx = ".gz" if gz else ""
    with open(folder / "matrix.mtx", "wb") as fh:
        mmwrite(fh, sparse.coo_matrix(X.T))
    if gz:
        data = (folder / "matrix.mtx").read_bytes()
        (folder / "matrix.mtx").unlink()
        with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
            fh.write(data)
    with op(folder / f"barcodes.tsv{sfx}") as fh:
        fh.write("\n".join(barcodes) + "\n")
    name = "features.tsv" if v3 else "genes.tsv"
    with op(folder / f"{name}{sfx}") as fh:
        for i, g in enumerate(genes):
            fh.write(f"ENSG{i:05d}\t{g}" + ("\tGene Expression" if v3 else "") + "\n")
    return folder


def test_read_10x_folder_gz_roundtrip(tmp_path):
    X = _counts()
    a = read_10x(_write_10x(tmp_path / "mtx", X))
    assert a.shape == (6, 4)
    assert sparse.issparse(a.X)
    np.testing.assert_array_equal(a.X.toarray(), X)
    np.testing.assert_array_equal(a.layers["counts"].toarray(), X)
    assert list(a.var_names) == ["G0", "G1", "G2", "G3"]
    assert a.var["gene_ids"].iloc[2] == "ENSG00002"
    assert a.obs_names[0] == "AAAC0-1"


def test_read_10x_v2_plain_and_duplicate_symbols(tmp_path):
    X = _counts()
    a = read_omics(_write_10x(tmp_path / "v2", X, genes=["A", "B", "A", "C"], gz=False, v3=False))
    assert len(set(a.var_names)) == 4  # duplicated symbol made unique
    np.testing.assert_array_equal(a.X.toarray(), X)


def test_read_10x_genes_barcodes_mismatch_is_clear(tmp_path):
    X = _counts()
    folder = _write_10x(tmp_path / "bad", X, genes=["G0", "G1", "G2"],
                        barcodes=[f"B{i}" for i in range(5)])
    with pytest.raises(ValidationError) as e:
        read_10x(folder)
    msg = str(e.value)
    assert "4 rows (genes) but features.tsv.gz lists 3 genes" in msg
    assert "6 columns (cells) but barcodes.tsv.gz lists 5 barcodes" in msg
    assert "fix:" in msg


def test_read_10x_missing_and_empty_files(tmp_path):
    folder = _write_10x(tmp_path / "m", _counts())
    (folder / "barcodes.tsv.gz").unlink()
    with pytest.raises(InputError, match="lacks barcodes.tsv"):
        read_10x(folder)
    folder2 = _write_10x(tmp_path / "e", _counts(), gz=False)
    (folder2 / "matrix.mtx").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_10x(folder2)


def test_read_10x_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    X = _counts()
    m = sparse.csc_matrix(X.T)  # 10x stores genes x cells, CSC over cells
    p = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("matrix")
        g["data"] = m.data.astype(np.int32)
        g["indices"] = m.indices.astype(np.int64)
        g["indptr"] = m.indptr.astype(np.int64)
        g["shape"] = np.array(m.shape, dtype=np.int32)
        g["barcodes"] = np.array([f"C{i}-1".encode() for i in range(6)])
        ft = g.create_group("features")
        ft["id"] = np.array([f"ENSG{i}".encode() for i in range(4)])
        ft["name"] = np.array([f"G{i}".encode() for i in range(4)])
        ft["feature_type"] = np.array([b"Gene Expression"] * 4)
        ft["genome"] = np.array([b"GRCh38"] * 4)
        ft["_all_tag_keys"] = np.array([b"genome"])
    a = read_omics(p)
    assert a.shape == (6, 4)
    np.testing.assert_array_equal(a.X.toarray(), X)
    assert a.obs_names[1] == "C1-1"


def test_read_counts_table_orientations(tmp_path):
    X = _counts(n_cells=3, n_genes=5)
    genes = [f"G{i}" for i in range(5)]
    cells = ["c1", "c2", "c3"]
    pd.DataFrame(X.T, index=genes, columns=cells).to_csv(tmp_path / "gxc.tsv", sep="\t")
    a = read_counts_table(tmp_path / "gxc.tsv")  # auto: more rows than columns -> genes x cells
    assert list(a.obs_names) == cells and list(a.var_names) == genes
    np.testing.assert_array_equal(a.X.toarray(), X)
    pd.DataFrame(X.T, index=genes, columns=cells).to_csv(tmp_path / "forced.csv")
    b = read_omics(tmp_path / "forced.csv", orientation="cells_by_genes")
    assert b.shape == (5, 3)


def test_read_counts_table_errors_name_line_and_column(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        read_omics(tmp_path / "empty.csv")
    (tmp_path / "bad.csv").write_text("gene,c1,c2\nG1,1,2\nG2,3,x\nG3,0,1\n")
    with pytest.raises(InputError) as e:
        read_counts_table(tmp_path / "bad.csv")
    assert e.value.where == "line 3, column 'c2'"
    (tmp_path / "neg.csv").write_text("gene,c1,c2\nG1,1,2\nG2,3,-1\nG3,0,1\n")
    with pytest.raises(InputError, match="negative"):
        read_counts_table(tmp_path / "neg.csv")
    (tmp_path / "x.xyz").write_text("1")
    with pytest.raises(InputError, match="unknown single-cell format"):
        read_omics(tmp_path / "x.xyz")


def test_read_h5ad_counts_layer_and_errors(tmp_path):
    import anndata as ad

    X = _counts()
    a = ad.AnnData(X=np.log1p(X), layers={"raw": X})
    a.write_h5ad(tmp_path / "a.h5ad")
    b = read_h5ad(tmp_path / "a.h5ad", counts_layer="raw")
    np.testing.assert_array_equal(b.X.toarray(), X)
    with pytest.raises(InputError, match="not whole numbers") as e:
        read_h5ad(tmp_path / "a.h5ad")  # X holds log1p values
    assert "counts_layer" in e.value.fix
    with pytest.raises(InputError, match="layer 'nope' not found"):
        read_h5ad(tmp_path / "a.h5ad", counts_layer="nope")
    (tmp_path / "empty.h5ad").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_omics(tmp_path / "empty.h5ad")
    (tmp_path / "junk.h5ad").write_text("not hdf5")
    with pytest.raises(InputError, match="cannot read as h5ad"):
        read_omics(tmp_path / "junk.h5ad")


def test_read_bulk_genes_by_samples(tmp_path):
    df = pd.DataFrame(np.arange(12).reshape(4, 3), index=[f"G{i}" for i in range(4)],
                      columns=["s1", "s2", "s3"])
    df.to_csv(tmp_path / "bulk.tsv", sep="\t")
    b = read_bulk(tmp_path / "bulk.tsv")
    assert b.index.name == "sample_id" and list(b.index) == ["s1", "s2", "s3"]
    assert b.loc["s2", "G3"] == 10


def test_check_obs_key_missing_batch_key():
    import anndata as ad

    a = ad.AnnData(X=_counts(), obs=pd.DataFrame({"sample": list("aabbcc")},
                                                 index=[f"c{i}" for i in range(6)]))
    with pytest.raises(InputError) as e:
        check_obs_key(a, "batch", what="batch key")
    assert "batch key 'batch' is not a column" in str(e.value)
    assert "sample" in e.value.where
    a.obs["one"] = "x"
    with pytest.raises(InputError, match="1 distinct value"):
        check_obs_key(a, "one", min_levels=2)


def test_join_metadata_by_sample(tmp_path):
    import anndata as ad

    a = ad.AnnData(X=_counts(), obs=pd.DataFrame({"sample": list("aabbcc")},
                                                 index=[f"c{i}" for i in range(6)]))
    meta = pd.DataFrame({"patient": ["p1", "p1", "p2"], "response": [1, 1, 0]},
                        index=["a", "b", "c"])
    join_metadata(a, meta, on="sample")
    assert a.obs["patient"].tolist() == ["p1", "p1", "p1", "p1", "p2", "p2"]
    assert a.obs["response"].tolist() == [1, 1, 1, 1, 0, 0]
    p = tmp_path / "meta.csv"
    meta.drop(index="c").rename_axis("sample").reset_index().rename(
        columns={"patient": "donor", "response": "resp"}).to_csv(p, index=False)
    with pytest.raises(ValidationError, match=r"1 sample value\(s\) \(2 cells\) have no metadata"):
        join_metadata(a, p, on="sample")
