"""Bad inputs (issue #16) for ``pmed omics pipeline`` and :func:`pmed.omics.run_omics`.

Small AnnData files (a few hundred cells) written in each test: options out of range, cut files,
repeated cell, gene and column names, and an output folder reused with other options. Patient IDs
(``MRN…``) and barcodes built from them must never appear in a message.
"""

import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from badinput import bad_input, diagnosis, refused, run_cli

pytest.importorskip("scanpy")
pytest.importorskip("harmonypy")
ad = pytest.importorskip("anndata")

from scipy import io as spio  # noqa: E402
from scipy import sparse  # noqa: E402

from pmed.errors import OptionError  # noqa: E402
from pmed.omics import run_omics  # noqa: E402
from pmed.omics.readers import OmicsWarning, read_omics  # noqa: E402

IDS = ["MRN0042731", "MRN0099120", "MRN0051555", "MRN0070007"]


def _cells(n_cells=200, n_genes=60, seed=0) -> "ad.AnnData":
    """Random counts, barcodes built from the patients' IDs (as pooled samples often are)."""
    rng = np.random.default_rng(seed)
    X = sparse.csr_matrix(rng.poisson(1.0, (n_cells, n_genes)).astype(np.float32))
    pid = np.array(IDS)[np.arange(n_cells) % len(IDS)]
    obs = pd.DataFrame({"patient_id": pid, "batch": np.where(np.arange(n_cells) % 2, "b1", "b2")},
                       index=[f"{p}_AAACCTG{i:05d}" for i, p in enumerate(pid)])
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"G{i:03d}" for i in range(n_genes)]))


def _h5ad(path, a=None):
    (a if a is not None else _cells()).write_h5ad(path)
    return path


def _ten_x(folder, a):
    """A Cell Ranger v3 folder (gzip) of ``a``: genes × cells."""
    folder.mkdir()
    with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
        spio.mmwrite(fh, sparse.csr_matrix(a.X).T.tocoo())
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.write("\n".join(a.obs_names) + "\n")
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        fh.write("".join(f"ENSG{i:05d}\t{g}\tGene Expression\n" for i, g in enumerate(a.var_names)))
    return folder


def _cut(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _pipeline(src, out, *extra):
    return ["omics", "pipeline", "--input", src, "--batch-key", "batch", "--out", out, *extra]


# ---------------------------------------------------------------------------------------------
# option values, checked before the h5ad is read
# ---------------------------------------------------------------------------------------------

@bad_input("options")
@pytest.mark.parametrize("argv, says", [
    (["--n-comps", "0"], "--n-comps"), (["--n-comps", "-3"], "--n-comps"),
    (["--resolution", "0"], "--resolution"), (["--resolution", "-1"], "--resolution"),
    (["--resolution", "nan"], "--resolution"), (["--resolution", "inf"], "--resolution.*finite"),
    (["--min-genes", "-1"], "--min-genes"), (["--max-pct-mt", "-1"], "--max-pct-mt"),
    (["--max-pct-mt", "101"], "--max-pct-mt"), (["--max-pct-mt", "nan"], "--max-pct-mt"),
    (["--n-top-genes", "0"], "--n-top-genes"), (["--n-jobs", "0"], "--n-jobs"),
    (["--seed", "-1"], "--seed"), (["--method", "mnn"], "--method"),
    (["--cell-types", "B cells,Hepatocytes"], "cell type.*not in the marker set"),
    (["--markers", "no_such_markers.json"], "marker set not found"),
])
def test_cli_options_refused_before_reading(tmp_path, capsys, argv, says):
    # not an h5ad at all: reading it would say "cannot read as h5ad", so the option came first
    src = tmp_path / "cells.h5ad"
    src.write_bytes(b"\x00not hdf5\xff" * 20)
    refused(capsys, tmp_path, _pipeline(src, tmp_path / "out", *argv), code=2, says=says,
            out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@bad_input("options")
@pytest.mark.parametrize("kw", [
    {"n_comps": 0}, {"n_comps": 2.5}, {"resolution": -1}, {"resolution": float("nan")},
    {"resolution": float("inf")}, {"min_genes": -1}, {"max_pct_mt": 120}, {"n_top_genes": 0},
    {"n_neighbors": 1}, {"n_jobs": 0}, {"seed": -1}, {"doublets": "no"}, {"method": "mnn"},
    {"cell_types": ["Hepatocytes"]}, {"n_comps": True},
])
def test_api_options_refused_before_reading(tmp_path, kw):
    with pytest.raises(OptionError):
        run_omics(tmp_path / "absent.h5ad", batch_key="batch", **kw)  # reading: InputError


# ---------------------------------------------------------------------------------------------
# broken files
# ---------------------------------------------------------------------------------------------

@bad_input("broken")
@pytest.mark.parametrize("keep", [0.02, 0.5, 0.99])
def test_truncated_h5ad_is_named(tmp_path, capsys, keep):
    src = _cut(_h5ad(tmp_path / "cells.h5ad"), keep)
    refused(capsys, tmp_path, _pipeline(src, tmp_path / "out"), code=2,
            says=r"cells\.h5ad: the h5ad file is truncated", out=tmp_path / "out", secrets=IDS)


@bad_input("broken")
@pytest.mark.parametrize("name", ["matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz"])
def test_truncated_10x_file_is_named(tmp_path, capsys, name):
    folder = _ten_x(tmp_path / "tenx", _cells(n_cells=300))
    _cut(folder / name, 0.5)
    refused(capsys, tmp_path, _pipeline(folder, tmp_path / "out"), code=2,
            says=rf"{name.replace('.', '[.]')}: .*truncated", out=tmp_path / "out", secrets=IDS)


@bad_input("broken")
def test_truncated_counts_csv_gz_is_named(tmp_path, capsys):
    a = _cells(n_cells=120)
    df = pd.DataFrame(a.X.toarray(), index=[f"C{i}" for i in range(a.n_obs)], columns=a.var_names)
    src = tmp_path / "counts.csv.gz"
    src.write_bytes(gzip.compress(df.to_csv().encode()))
    _cut(src, 0.5)
    refused(capsys, tmp_path, _pipeline(src, tmp_path / "out"), code=2, says=r"counts\.csv\.gz: .*truncated",
            out=tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# repeated names: never silently dropped or renamed
# ---------------------------------------------------------------------------------------------

@bad_input("identifiers")
def test_repeated_barcodes_give_a_count_not_the_barcodes(tmp_path, capsys):
    a = _cells()
    names = list(a.obs_names)
    names[7], names[11] = names[3], names[3]
    a.obs_names = names
    src = _h5ad(tmp_path / "cells.h5ad", a)
    head = refused(capsys, tmp_path, _pipeline(src, tmp_path / "out"), code=2,
                   says="2 cell barcodes repeat an earlier one", out=tmp_path / "out", secrets=IDS)
    assert "cells 4, 8, 12" in head


@bad_input("silent")
def test_repeated_gene_names_are_made_unique_with_a_warning(tmp_path):
    a = _cells()
    genes = list(a.var_names)
    genes[5] = genes[9] = genes[2]
    a.var_names = genes
    X = a.X.toarray()
    src = _h5ad(tmp_path / "cells.h5ad", a)
    with pytest.warns(OmicsWarning, match=r"2 gene names repeat an earlier one \(1 distinct: \['G002'\]\)"):
        b = read_omics(src)
    assert b.n_vars == a.n_vars and b.var_names.is_unique  # every gene kept
    assert list(b.var_names[[2, 5, 9]]) == ["G002", "G002-1", "G002-2"]
    np.testing.assert_array_equal(b.X.toarray(), X)  # each keeps its own counts


@bad_input("silent")
def test_repeated_gene_symbols_in_10x_warn(tmp_path):
    a = _cells(n_cells=50, n_genes=10)
    a.var_names = ["CD3E", "CD3E", *[f"G{i}" for i in range(8)]]
    folder = _ten_x(tmp_path / "tenx", a)
    with pytest.warns(OmicsWarning, match="1 gene names repeat an earlier one"):
        b = read_omics(folder)
    assert list(b.var_names[:2]) == ["CD3E", "CD3E-1"]


@bad_input("silent")
@pytest.mark.parametrize("orientation", ["cells_by_genes", "genes_by_cells"])
def test_repeated_column_names_in_a_count_table_are_refused(tmp_path, capsys, orientation):
    # pandas would rename the second "G001" to "G001.1" (or a barcode to "…​.1") without a word
    a = _cells(n_cells=40, n_genes=30)
    df = pd.DataFrame(a.X.toarray(), index=list(a.obs_names), columns=list(a.var_names))
    if orientation == "genes_by_cells":
        df = df.T
    cols = list(df.columns)
    cols[4] = cols[1]
    df.columns = cols
    src = tmp_path / "counts.csv"
    df.to_csv(src)
    refused(capsys, tmp_path, _pipeline(src, tmp_path / "out"), code=2,
            says=r"1 column name\(s\) appear more than once in the header \(columns 3, 6\)",
            out=tmp_path / "out", secrets=IDS)


@bad_input("silent")
def test_repeated_column_names_in_the_metadata_are_refused(tmp_path, capsys):
    src = _h5ad(tmp_path / "cells.h5ad")
    meta = tmp_path / "meta.csv"
    a = _cells()
    meta.write_text("barcode,site,site\n" + "".join(f"{b},x,y\n" for b in a.obs_names))
    refused(capsys, tmp_path, _pipeline(src, tmp_path / "out", "--metadata", meta), code=2,
            says=r"meta\.csv: .*1 column name\(s\) appear more than once", out=tmp_path / "out", secrets=IDS)


@bad_input("identifiers")
def test_repeated_metadata_keys_give_a_count(tmp_path, capsys):
    src = _h5ad(tmp_path / "cells.h5ad")
    meta = tmp_path / "patients.csv"
    meta.write_text("patient_id,arm\n" + "".join(f"{p},A\n" for p in IDS) + f"{IDS[2]},B\n")
    rc, text = run_cli(capsys, _pipeline(src, tmp_path / "out", "--metadata", meta,
                                         "--metadata-on", "patient_id"))
    assert rc == 4 and "Traceback" not in text
    assert "1 duplicated keys in the metadata" in text
    assert not any(i in text for i in IDS)


@bad_input("identifiers")
def test_missing_batch_key_lists_long_obs_columns_short(tmp_path, capsys):
    a = _cells()
    for i in range(12):
        a.obs[f"{i}_" + "q" * 10_000] = 1
    src = _h5ad(tmp_path / "cells.h5ad", a)
    head = refused(capsys, tmp_path, ["omics", "pipeline", "--input", src, "--batch-key", "donor",
                                      "--out", tmp_path / "out"], code=2,
                   says="batch key 'donor' is not a column", out=tmp_path / "out", secrets=IDS + ["q" * 50])
    assert "(14 in all)" in head


# ---------------------------------------------------------------------------------------------
# misleading diagnoses
# ---------------------------------------------------------------------------------------------

@bad_input("diagnosis")
def test_no_cell_passing_qc_names_the_cli_options(tmp_path, capsys):
    src = _h5ad(tmp_path / "cells.h5ad")
    rc, text = run_cli(capsys, _pipeline(src, tmp_path / "out", "--min-genes", "100000", "--no-doublets"))
    lines = diagnosis(text)
    assert rc == 2 and "no cell passes QC (200 cells: 200 with n_genes < 100000" in lines[0]
    assert lines[1].startswith("fix:") and "--min-genes" in lines[1] and "--max-pct-mt" in lines[1]
    assert not (tmp_path / "out").exists()


@bad_input("diagnosis")
def test_out_folder_of_another_kind_is_refused_before_the_work(tmp_path, capsys):
    src = _h5ad(tmp_path / "cells.h5ad")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    refused(capsys, tmp_path, _pipeline(src, tmp_path / "out", "--min-genes", "100000"), code=2,
            says="output folder is not empty and does not hold an earlier omics output")


# ---------------------------------------------------------------------------------------------
# output folders that mix runs
# ---------------------------------------------------------------------------------------------

@bad_input("mixed")
def test_rerun_with_other_options_leaves_only_its_own_files(tmp_path, capsys):
    from pmed.omics.synthetic import simulate_single_cell

    a = simulate_single_cell(IDS, np.array([0, 1, 0, 1]), cells_per_patient=60, seed=3)
    a.uns.clear()
    src = _h5ad(tmp_path / "cells.h5ad", a)
    out = tmp_path / "out"
    # no doublets, no UMAP: the two runs stay a few seconds (once numba has compiled the graph code)
    common = ["--no-doublets", "--no-umap", "--n-top-genes", "120", "--n-comps", "8", "--patient-key", "patient_id"]
    rc, text = run_cli(capsys, _pipeline(src, out, *common, "--plots"))
    assert rc == 0, text
    first = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert "plots/qc.png" in first
    rc, text = run_cli(capsys, _pipeline(src, out, *common, "--no-plots", "--resolution", "0.3"))
    assert rc == 0, text
    second = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert not (out / "plots").exists() and not any(f.startswith("plots/") for f in second)
    run = json.loads((out / "run.json").read_text())
    assert set(run["files"]) == second  # the folder holds exactly what this run says it wrote
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["options"]["plots"] is False and prov["options"]["resolution"] == 0.3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_clean_cells_raise_no_omics_warning(tmp_path):
    """The warnings above are specific: unique names read without one."""
    src = _h5ad(tmp_path / "cells.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("error", OmicsWarning)
        b = read_omics(src)
    assert b.n_obs == 200 and b.n_vars == 60
