"""Readers of pmed.spatial: h5ad, Space Ranger folders and cell tables, and their refusals."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import io as spio
from scipy import sparse

from pmed.errors import DataNotFoundError, InputError, OptionError
from pmed.spatial.io import image_and_scale, read_cell_table, read_spatial, spot_diameter_px

pytest.importorskip("anndata")

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "spatial"
VISIUM = SHARED / "visium_breast_cancer_blockA1.h5ad"
MERFISH = SHARED / "merfish_nsclc_chen2024.h5ad"

# --------------------------------------------------------------------------------------------
# a small Space Ranger folder
# --------------------------------------------------------------------------------------------

# six spots in the positions file; the matrix holds five of them (spot 3 is outside the tissue)
POS_BARCODES = ["AAACAAGT-1", "AAACACCA-1", "AAACAGAG-1", "AAACAGCT-1", "AAACAGGG-1", "AAACATTT-1"]
IN_TISSUE = [1, 1, 1, 0, 1, 0]
ARRAY_ROW = [0, 1, 2, 3, 4, 5]
ARRAY_COL = [10, 11, 12, 13, 14, 15]
PXL_ROW = [1000, 1100, 1200, 1300, 1400, 1500]  # y
PXL_COL = [2000, 2050, 2100, 2150, 2200, 2250]  # x
MATRIX_BARCODES = POS_BARCODES[:5]
GENES = [("ENSG01", "GeneA"), ("ENSG02", "GeneB"), ("ENSG03", "GeneC")]
COUNTS = np.array([[1, 0, 3], [0, 5, 0], [2, 2, 2], [7, 0, 1], [0, 0, 4]])  # spots × genes
SCALEF = {"spot_diameter_fullres": 89.5, "tissue_hires_scalef": 0.2, "tissue_lowres_scalef": 0.05,
          "fiducial_diameter_fullres": 144.6}


def _write_gz(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt") as fh:
        fh.write("".join(line + "\n" for line in lines))


def make_spaceranger(folder: Path, *, header: bool = True, h5: bool = False,
                     scalefactors: bool = True, barcodes: list[str] | None = None) -> Path:
    """Space Ranger ``outs``-like folder: matrix (mtx folder or .h5), positions, scale factors, PNGs."""
    from PIL import Image

    folder.mkdir(parents=True)
    mbar = barcodes or MATRIX_BARCODES
    if h5:
        import h5py

        m = sparse.csc_matrix(COUNTS.T)  # genes × spots
        with h5py.File(folder / "filtered_feature_bc_matrix.h5", "w") as f:
            f.attrs["library_ids"] = np.array([b"section_1"])
            f.attrs["chemistry_description"] = "Spatial 3' v1"
            f.attrs["software_version"] = "spaceranger-1.1.0"
            g = f.create_group("matrix")
            g["barcodes"] = np.array(mbar, dtype="S")
            g["data"] = m.data.astype(np.int32)
            g["indices"] = m.indices.astype(np.int64)
            g["indptr"] = m.indptr.astype(np.int64)
            g["shape"] = np.array(m.shape, dtype=np.int32)
            ft = g.create_group("features")
            ft["id"] = np.array([i for i, _ in GENES], dtype="S")
            ft["name"] = np.array([n for _, n in GENES], dtype="S")
            ft["feature_type"] = np.array([b"Gene Expression"] * len(GENES))
            ft["genome"] = np.array([b"GRCh38"] * len(GENES))
            ft["_all_tag_keys"] = np.array([b"genome"])
    else:
        mdir = folder / "filtered_feature_bc_matrix"
        mdir.mkdir()
        with gzip.open(mdir / "matrix.mtx.gz", "wb") as fh:
            spio.mmwrite(fh, sparse.coo_matrix(COUNTS.T), field="integer")
        _write_gz(mdir / "barcodes.tsv.gz", mbar)
        _write_gz(mdir / "features.tsv.gz", [f"{i}\t{n}\tGene Expression" for i, n in GENES])
    sp = folder / "spatial"
    sp.mkdir()
    rows = [f"{b},{t},{r},{c},{pr},{pc}" for b, t, r, c, pr, pc in
            zip(POS_BARCODES, IN_TISSUE, ARRAY_ROW, ARRAY_COL, PXL_ROW, PXL_COL, strict=True)]
    if header:
        (sp / "tissue_positions.csv").write_text(
            "barcode,in_tissue,array_row,array_col,pxl_row_in_fullres,pxl_col_in_fullres\n"
            + "\n".join(rows) + "\n")
    else:
        (sp / "tissue_positions_list.csv").write_text("\n".join(rows) + "\n")
    if scalefactors:
        (sp / "scalefactors_json.json").write_text(json.dumps(SCALEF))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)).save(sp / "tissue_hires_image.png")
    Image.fromarray(rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)).save(sp / "tissue_lowres_image.png")
    return folder


def _assert_fix(err: pytest.ExceptionInfo, file: Path) -> None:
    text = str(err.value)
    assert str(file) in text
    assert err.value.fix and "fix:" in text


# --------------------------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def visium():
    if not VISIUM.is_file():
        pytest.skip(f"real data not found: {VISIUM}")
    import pmed.omics.readers

    # the HDF5 structure check (a child process reading all 46 MB again) runs on the MERFISH file
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pmed.omics.readers, "_h5_precheck", lambda path: None)
        return read_spatial(VISIUM)


@pytest.mark.realdata
def test_real_visium_h5ad_keeps_every_in_tissue_spot_with_coordinates_and_image(visium):
    a = visium
    assert a.shape == (3796, 14664)  # every spot of this file is in the tissue
    assert a.uns["pmed_spatial"]["n_dropped_not_in_tissue"] == 0
    assert a.uns["pmed_spatial"]["format"] == "h5ad"
    assert a.uns["pmed_spatial"]["platform"] == "visium"
    assert a.uns["pmed_spatial"]["library_id"] == "V1_Breast_Cancer_Block_A_Section_1"
    assert sparse.isspmatrix_csr(a.X) and a.X.dtype == np.float32
    assert a.obsm["spatial"].shape == (3796, 2) and np.isfinite(a.obsm["spatial"]).all()
    assert a.obsm["spatial"][0].tolist() == [17428, 15937]  # AAACAAGTATCTCCCA-1, as stored
    assert a.obs_names[0] == "AAACAAGTATCTCCCA-1"
    assert float(a.X[0].sum()) == 9046.0 == a.obs["total_counts"].iloc[0]
    img, scalef = image_and_scale(a)
    assert img.shape == (2000, 2000, 3) and scalef == pytest.approx(0.08250825)
    assert image_and_scale(a, image="lowres")[0].shape == (600, 600, 3)
    assert spot_diameter_px(a) == pytest.approx(177.48170171293427 * 0.08250825)
    # every spot falls on the hires image
    px = a.obsm["spatial"] * scalef
    assert (px >= 0).all() and (px < 2000).all()


@pytest.mark.realdata
def test_real_merfish_h5ad_reads_every_cell_as_cells_platform():
    if not MERFISH.is_file():
        pytest.skip(f"real data not found: {MERFISH}")
    a = read_spatial(MERFISH)
    assert a.shape == (3177, 479)
    assert a.uns["pmed_spatial"]["platform"] == "cells"
    assert a.obs["cell_type"].nunique() == 7
    assert np.isfinite(a.obsm["spatial"]).all()
    np.testing.assert_allclose(np.asarray(a.X.sum(axis=1)).ravel(), a.obs["total_counts"])
    with pytest.raises(InputError, match="no tissue image"):
        image_and_scale(a)


# --------------------------------------------------------------------------------------------
# Space Ranger folders
# --------------------------------------------------------------------------------------------

def test_spaceranger_mtx_folder_with_header_positions_reads_counts_coordinates_and_images(tmp_path):
    folder = make_spaceranger(tmp_path / "sample1" / "outs")
    a = read_spatial(tmp_path / "sample1")  # the sample folder holding outs/ works too
    kept = [0, 1, 2, 4]  # spot 3 is outside the tissue
    assert a.obs_names.tolist() == [MATRIX_BARCODES[i] for i in kept]
    assert a.var_names.tolist() == ["GeneA", "GeneB", "GeneC"]
    np.testing.assert_array_equal(a.X.toarray(), COUNTS[kept])
    np.testing.assert_array_equal(a.layers["counts"].toarray(), COUNTS[kept])
    # x = pxl_col_in_fullres, y = pxl_row_in_fullres
    np.testing.assert_array_equal(a.obsm["spatial"], [[PXL_COL[i], PXL_ROW[i]] for i in kept])
    assert a.obs["in_tissue"].tolist() == [1, 1, 1, 1]
    assert a.obs["array_row"].tolist() == [ARRAY_ROW[i] for i in kept]
    assert a.obs["array_col"].tolist() == [ARRAY_COL[i] for i in kept]
    info = a.uns["pmed_spatial"]
    assert info == {"source": str(folder), "format": "spaceranger", "platform": "visium",
                    "library_id": "sample1", "n_dropped_not_in_tissue": 1}
    lib = a.uns["spatial"]["sample1"]
    assert set(lib) == {"images", "scalefactors", "metadata"}
    assert lib["images"]["hires"].shape == (8, 12, 3) and lib["images"]["hires"].dtype == np.uint8
    assert lib["images"]["lowres"].shape == (4, 6, 3)
    assert lib["scalefactors"] == SCALEF
    assert spot_diameter_px(a) == pytest.approx(89.5 * 0.2)
    assert spot_diameter_px(a, image="lowres") == pytest.approx(89.5 * 0.05)
    assert spot_diameter_px(a, image="fullres") == pytest.approx(89.5)
    assert image_and_scale(a, "sample1", "lowres")[1] == 0.05


def test_spaceranger_headerless_positions_list_reads_the_same_and_keeps_every_spot_on_request(tmp_path):
    make_spaceranger(tmp_path / "old", header=False)
    a = read_spatial(tmp_path / "old", in_tissue_only=False, library_id="lib")
    np.testing.assert_array_equal(a.X.toarray(), COUNTS)
    np.testing.assert_array_equal(a.obsm["spatial"], np.c_[PXL_COL[:5], PXL_ROW[:5]])
    assert a.obs["in_tissue"].tolist() == IN_TISSUE[:5]
    assert "n_dropped_not_in_tissue" not in a.uns["pmed_spatial"]
    assert list(a.uns["spatial"]) == ["lib"]


def test_spaceranger_h5_matrix_matches_scanpy_read_visium_and_writes_back(tmp_path):
    sc = pytest.importorskip("scanpy")
    folder = make_spaceranger(tmp_path / "h5", h5=True)
    a = read_spatial(folder, in_tissue_only=False)
    assert a.uns["pmed_spatial"]["library_id"] == "section_1"  # stored in the .h5
    assert a.uns["spatial"]["section_1"]["metadata"] == {
        "chemistry_description": "Spatial 3' v1", "software_version": "spaceranger-1.1.0"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read_visium is deprecated in scanpy 1.11
        ref = sc.read_visium(folder)
    assert ref.obs_names.tolist() == a.obs_names.tolist()
    np.testing.assert_array_equal(ref.X.toarray(), a.X.toarray())
    np.testing.assert_array_equal(ref.obsm["spatial"], a.obsm["spatial"])
    for col in ("in_tissue", "array_row", "array_col"):
        assert ref.obs[col].tolist() == a.obs[col].tolist()
    rlib, lib = ref.uns["spatial"]["section_1"], a.uns["spatial"]["section_1"]
    assert rlib["scalefactors"] == lib["scalefactors"]
    assert rlib["metadata"] == lib["metadata"]
    for res in ("hires", "lowres"):  # scanpy gives floats in [0, 1], pmed the PNG's uint8
        np.testing.assert_allclose(rlib["images"][res], lib["images"][res] / 255, atol=1e-6)
    # the .h5 file itself, with spatial/ beside it, reads the same; the result writes as h5ad
    b = read_spatial(folder / "filtered_feature_bc_matrix.h5", in_tissue_only=False)
    np.testing.assert_array_equal(b.obsm["spatial"], a.obsm["spatial"])
    a.write_h5ad(tmp_path / "back.h5ad")
    c = read_spatial(tmp_path / "back.h5ad", in_tissue_only=False)
    np.testing.assert_array_equal(c.X.toarray(), COUNTS)
    assert c.uns["pmed_spatial"]["format"] == "h5ad"


def test_spaceranger_mismatched_barcodes_are_refused_as_different_runs(tmp_path):
    folder = make_spaceranger(tmp_path / "mix", barcodes=MATRIX_BARCODES[:4] + ["TTTTGGGG-1"])
    with pytest.raises(InputError, match=r"1 of the 5 barcodes.*TTTTGGGG-1") as e:
        read_spatial(folder)
    _assert_fix(e, folder / "spatial" / "tissue_positions.csv")
    assert "different runs" in e.value.fix


def test_spaceranger_images_without_scalefactors_file_are_refused(tmp_path):
    folder = make_spaceranger(tmp_path / "nosf", scalefactors=False)
    with pytest.raises(InputError, match="no scale factors") as e:
        read_spatial(folder)
    _assert_fix(e, folder / "spatial" / "scalefactors_json.json")


def test_spaceranger_positions_with_text_pixels_are_refused_with_line(tmp_path):
    folder = make_spaceranger(tmp_path / "bad")
    pos = folder / "spatial" / "tissue_positions.csv"
    pos.write_text(pos.read_text().replace(",2050\n", ",abc\n"))
    with pytest.raises(InputError, match="pxl_col_in_fullres") as e:
        read_spatial(folder)
    assert e.value.where == "line 3, column 'pxl_col_in_fullres'"
    _assert_fix(e, pos)


def test_spaceranger_spot_without_pixel_coordinates_is_named(tmp_path):
    folder = make_spaceranger(tmp_path / "nan")
    pos = folder / "spatial" / "tissue_positions.csv"
    pos.write_text(pos.read_text().replace(",1100,2050\n", ",,\n"))
    with pytest.raises(InputError, match=r"1 of the 4 spots have no coordinates.*AAACACCA-1") as e:
        read_spatial(folder)
    _assert_fix(e, pos)


# --------------------------------------------------------------------------------------------
# h5ad refusals
# --------------------------------------------------------------------------------------------

@pytest.fixture
def fast_h5(monkeypatch):
    """Skip the HDF5 structure check run in a child process (tested in tests/omics): ~1 s a file."""
    import pmed.omics.readers

    monkeypatch.setattr(pmed.omics.readers, "_h5_precheck", lambda path: None)


def _small_h5ad(path: Path, *, coords=True, nan_rows=(), uns=None, in_tissue=None) -> Path:
    import anndata as ad

    X = sparse.csr_matrix(np.arange(12, dtype=np.float32).reshape(4, 3))
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(4)])
    if in_tissue is not None:
        obs["in_tissue"] = in_tissue
        obs["array_row"] = [0, 1, 2, 3]
        obs["array_col"] = [0, 1, 0, 1]
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=["g1", "g2", "g3"]))
    if coords:
        xy = np.arange(8, dtype=float).reshape(4, 2)
        xy[list(nan_rows)] = np.nan
        a.obsm["spatial"] = xy
    else:
        a.obs["center_x"] = 1.0
        a.obs["center_y"] = 2.0
    if uns is not None:
        a.uns["spatial"] = uns
    a.write_h5ad(path)
    return path


def test_h5ad_filters_spots_outside_tissue_and_records_how_many(tmp_path, fast_h5):
    f = _small_h5ad(tmp_path / "s.h5ad", in_tissue=[1, 0, 1, 0])
    a = read_spatial(f)
    assert a.obs_names.tolist() == ["cell0", "cell2"]
    np.testing.assert_array_equal(a.X.toarray(), [[0, 1, 2], [6, 7, 8]])
    np.testing.assert_array_equal(a.obsm["spatial"], [[0, 1], [4, 5]])
    assert a.uns["pmed_spatial"]["n_dropped_not_in_tissue"] == 2
    assert a.uns["pmed_spatial"]["platform"] == "visium"
    # the input file is not modified
    assert read_spatial(f, in_tissue_only=False).n_obs == 4


def test_h5ad_spots_without_coordinates_are_named_with_count_and_fix(tmp_path, fast_h5):
    f = _small_h5ad(tmp_path / "nan.h5ad", nan_rows=(1, 3))
    with pytest.raises(InputError, match=r"2 of the 4 spots/cells have no coordinates.*cell1.*cell3") as e:
        read_spatial(f)
    _assert_fix(e, f)
    assert e.value.where == "obsm['spatial']"


def test_h5ad_without_obsm_spatial_points_at_the_obs_columns(tmp_path, fast_h5):
    f = _small_h5ad(tmp_path / "nokey.h5ad", coords=False)
    with pytest.raises(InputError, match=r"obsm\['spatial'\] is missing.*4 spots/cells") as e:
        read_spatial(f)
    _assert_fix(e, f)
    assert "center_x" in e.value.fix


def test_h5ad_images_without_scalefactors_are_refused(tmp_path, fast_h5):
    img = np.zeros((5, 5, 3), dtype=np.uint8)
    f = _small_h5ad(tmp_path / "img.h5ad", uns={"lib1": {"images": {"hires": img}}})
    with pytest.raises(InputError, match="has images .*hires.* but no scale factors") as e:
        read_spatial(f)
    _assert_fix(e, f)
    assert "scalefactors" in e.value.where
    g = _small_h5ad(tmp_path / "img2.h5ad", uns={"lib1": {
        "images": {"hires": img, "lowres": img}, "scalefactors": {"tissue_hires_scalef": 0.1}}})
    with pytest.raises(InputError, match="lack tissue_lowres_scalef, spot_diameter_fullres"):
        read_spatial(g)


def test_h5ad_unknown_library_id_is_refused(tmp_path, fast_h5):
    img = np.zeros((5, 5, 3), dtype=np.uint8)
    f = _small_h5ad(tmp_path / "lib.h5ad", uns={"lib1": {
        "images": {"hires": img}, "scalefactors": {"tissue_hires_scalef": 0.5,
                                                   "spot_diameter_fullres": 10.0}}})
    assert read_spatial(f).uns["pmed_spatial"]["library_id"] == "lib1"
    with pytest.raises(InputError, match="library 'other' not in"):
        read_spatial(f, library_id="other")


def test_missing_file_and_unknown_format_are_refused(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        read_spatial(tmp_path / "nothing.h5ad")
    _assert_fix(e, tmp_path / "nothing.h5ad")
    odd = tmp_path / "section.tiff"
    odd.write_bytes(b"II*\x00")
    with pytest.raises(InputError, match="unknown spatial format '.tiff'") as e:
        read_spatial(odd)
    _assert_fix(e, odd)
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(InputError, match="not a Space Ranger output folder") as e:
        read_spatial(folder)
    _assert_fix(e, folder)


# --------------------------------------------------------------------------------------------
# cell tables
# --------------------------------------------------------------------------------------------

def test_merfish_cell_by_gene_and_metadata_pair_in_non_ascii_folder(tmp_path):
    d = tmp_path / "données_é"
    d.mkdir()
    # Vizgen: cell_by_gene.csv (cell, genes incl. Blank controls), cell_metadata.csv (unnamed id)
    (d / "cell_by_gene.csv").write_text(
        "cell,CD3E,EPCAM,Blank-1\n101,3,0,1\n102,0,7,0\n103,1,1,0\n", encoding="utf-8")
    (d / "cell_metadata.csv").write_text(
        ",fov,volume,center_x,center_y,min_x,max_x\n"
        "103,0,50.5,30.0,300.0,29,31\n101,0,40.0,10.0,100.0,9,11\n102,1,45.2,20.5,200.5,19,21\n",
        encoding="utf-8")
    a = read_cell_table(d / "cell_by_gene.csv", metadata=d / "cell_metadata.csv")
    assert a.obs_names.tolist() == ["101", "102", "103"]
    assert a.var_names.tolist() == ["CD3E", "EPCAM", "Blank-1"]
    assert a.var["control"].tolist() == [False, False, True]
    np.testing.assert_array_equal(a.X.toarray(), [[3, 0, 1], [0, 7, 0], [1, 1, 0]])
    np.testing.assert_array_equal(a.obsm["spatial"], [[10.0, 100.0], [20.5, 200.5], [30.0, 300.0]])
    assert a.obs["volume"].tolist() == [40.0, 45.2, 50.5]
    assert {"fov", "min_x", "max_x"} <= set(a.obs.columns)
    assert a.uns["pmed_spatial"]["format"] == "cell_table"
    assert a.uns["pmed_spatial"]["platform"] == "cells"
    assert a.uns["pmed_spatial"]["coordinates"] == ["center_x", "center_y"]
    assert "données_é" in a.uns["pmed_spatial"]["source"]
    # read_spatial pairs a cell_by_gene table with its cell_metadata sibling
    b = read_spatial(d / "cell_by_gene.csv")
    np.testing.assert_array_equal(b.obsm["spatial"], a.obsm["spatial"])


def test_xenium_like_single_gzip_table_keeps_metadata_columns_out_of_genes(tmp_path):
    f = tmp_path / "cells.csv.gz"
    _write_gz(f, ["cell_id,x_centroid,y_centroid,transcript_counts,cell_area,nucleus_area,"
                  "ERBB2,KRT8,NegControlProbe_00001",
                  "aaab-1,1.5,2.5,10,55.0,20.0,4,6,0",
                  "aaac-1,3.5,4.5,3,60.0,22.0,0,2,1"])
    a = read_spatial(f)
    assert a.var_names.tolist() == ["ERBB2", "KRT8", "NegControlProbe_00001"]
    assert a.var["control"].tolist() == [False, False, True]
    assert a.obs_names.tolist() == ["aaab-1", "aaac-1"]
    np.testing.assert_array_equal(a.X.toarray(), [[4, 6, 0], [0, 2, 1]])
    np.testing.assert_array_equal(a.obsm["spatial"], [[1.5, 2.5], [3.5, 4.5]])
    assert a.obs["transcript_counts"].tolist() == [10, 3]
    assert "x_centroid" not in a.obs.columns


def test_cosmx_like_tables_join_on_fov_and_cell_id_dropping_background(tmp_path):
    expr = tmp_path / "Lung5_exprMat_file.csv"
    expr.write_text("fov,cell_ID,KRT19,PTPRC,NegPrb1\n1,0,50,40,3\n1,1,5,0,0\n1,2,0,9,1\n"
                    "2,1,2,2,0\n")
    meta = tmp_path / "Lung5_metadata_file.csv"
    meta.write_text("fov,cell_ID,Area,Mean.PanCK,CenterX_global_px,CenterY_global_px\n"
                    "2,1,300,12.5,5000.0,6000.0\n1,1,250,80.1,1000.0,2000.0\n"
                    "1,2,260,5.0,1010.0,2020.0\n")
    a = read_spatial(expr)  # finds the metadata_file sibling
    assert a.obs_names.tolist() == ["1_1", "1_2", "2_1"]  # cell 0: transcripts of no cell
    assert a.var_names.tolist() == ["KRT19", "PTPRC", "NegPrb1"]
    np.testing.assert_array_equal(a.X.toarray(), [[5, 0, 0], [0, 9, 1], [2, 2, 0]])
    np.testing.assert_array_equal(a.obsm["spatial"], [[1000, 2000], [1010, 2020], [5000, 6000]])
    assert a.obs["Mean.PanCK"].tolist() == [80.1, 5.0, 12.5]
    assert a.uns["pmed_spatial"]["coordinates"] == ["CenterX_global_px", "CenterY_global_px"]


def test_cell_table_parquet_with_named_coordinate_columns(tmp_path):
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"cell": ["c1", "c2"], "px": [1.0, 2.0], "py": [3.0, 4.0],
                       "MKI67": [0, 5], "TP53": [2, 1]})
    f = tmp_path / "cells.parquet"
    df.to_parquet(f)
    a = read_cell_table(f, x="px", y="py")
    assert a.var_names.tolist() == ["MKI67", "TP53"]
    np.testing.assert_array_equal(a.obsm["spatial"], [[1, 3], [2, 4]])


def test_cell_table_text_gene_column_is_named(tmp_path):
    f = tmp_path / "cells.csv"
    f.write_text("cell_id,x,y,CD3E,status\nc1,1,2,3,ok\nc2,3,4,0,bad\n")
    with pytest.raises(InputError, match="'status' is read as a gene but holds text") as e:
        read_cell_table(f)
    assert e.value.where == "line 2, column 'status'"
    _assert_fix(e, f)
    assert "metadata" in e.value.fix


def test_cell_table_ids_not_matching_the_metadata_are_refused(tmp_path):
    c = tmp_path / "cell_by_gene.csv"
    c.write_text("cell,CD3E\n1,3\n2,0\n3,1\n")
    m = tmp_path / "cell_metadata.csv"
    m.write_text("cell,center_x,center_y\n1,0,0\n2,1,1\n9,2,2\n")
    with pytest.raises(InputError, match=r"1 of the 3 cells of the counts are not in the metadata "
                                         r"\(\['3'\]\); 1 of the 3 cells of the metadata.*\['9'\]") as e:
        read_cell_table(c, metadata=m)
    _assert_fix(e, m)


def test_cell_table_without_coordinates_or_with_nan_coordinates_is_refused(tmp_path):
    f = tmp_path / "nocoord.csv"
    f.write_text("cell_id,CD3E\nc1,3\n")
    with pytest.raises(InputError, match="no coordinate columns") as e:
        read_cell_table(f)
    _assert_fix(e, f)
    g = tmp_path / "nan.csv"
    g.write_text("cell_id,x,y,CD3E\nc1,1,2,3\nc2,,4,0\n")
    with pytest.raises(InputError, match=r"1 of the 2 cells have no coordinates.*'c2'") as e:
        read_cell_table(g)
    _assert_fix(e, g)
    with pytest.raises(OptionError):
        read_cell_table(g, x="x")


def test_h5ad_repeated_gene_names_are_made_unique_with_a_warning(tmp_path, fast_h5):
    import anndata as ad

    from pmed.omics.readers import OmicsWarning

    b = ad.AnnData(X=sparse.csr_matrix(np.ones((1, 2), dtype=np.float32)),
                   var=pd.DataFrame(index=["G", "H"]))
    b.obsm["spatial"] = np.zeros((1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata warns of the repeated names it is given
        b.var_names = ["G", "G"]
        b.write_h5ad(tmp_path / "dup.h5ad")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Variable names are not unique")  # anndata's, on reading
        with pytest.warns(OmicsWarning, match="made unique"):
            c = read_spatial(tmp_path / "dup.h5ad")
    assert c.var_names.tolist() == ["G", "G-1"]


@pytest.mark.parametrize(("body", "match", "where"), [
    ("cell_id,x,y,CD3E\nc1,1,2,1.5\n", "not whole numbers", None),
    ("cell_id,x,y,CD3E\nc1,1,2,-1\n", "1 negative counts", "line 2, column 'CD3E'"),
    ("cell_id,x,y,CD3E\nc1,1,2,1\nc1,3,4,2\n", "1 cell ids repeat", "line 3, column 'cell_id'"),
    ("cell_id,x,y,CD3E\nc1,a,2,1\n", "'x' holds text", "line 2, column 'x'"),
])
def test_cell_table_values_that_are_not_counts_or_ids_are_refused_with_place(tmp_path, body, match, where):
    f = tmp_path / "cells.csv"
    f.write_text(body)
    with pytest.raises(InputError, match=match) as e:
        read_cell_table(f)
    assert e.value.where == where
    _assert_fix(e, f)


def test_cell_table_id_column_named_in_counts_may_be_named_otherwise_in_metadata(tmp_path):
    c = tmp_path / "counts.csv"
    c.write_text("cell,CD3E\n1,3\n2,4\n")
    m = tmp_path / "meta.csv"
    m.write_text("EntityID,center_x,center_y\n2,5,6\n1,7,8\n")
    a = read_cell_table(c, metadata=m, cell_id="cell")
    np.testing.assert_array_equal(a.obsm["spatial"], [[7, 8], [5, 6]])
    with pytest.raises(InputError, match="no cell id column 'nope'") as e:
        read_cell_table(c, metadata=m, cell_id="nope")
    _assert_fix(e, c)


def test_spaceranger_scalefactors_lacking_keys_are_refused(tmp_path):
    folder = make_spaceranger(tmp_path / "sf")
    sf = folder / "spatial" / "scalefactors_json.json"
    sf.write_text(json.dumps({"tissue_hires_scalef": 0.2}))
    with pytest.raises(InputError, match="lack tissue_lowres_scalef, spot_diameter_fullres") as e:
        read_spatial(folder)
    _assert_fix(e, sf)
