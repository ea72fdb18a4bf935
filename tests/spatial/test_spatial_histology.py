"""pmed.spatial.histology: spot tiles are exact crops; a CNN on tiles predicts expression programmes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed.errors import InputError, OptionError

ad = pytest.importorskip("anndata")
pytest.importorskip("monai")
torch = pytest.importorskip("torch")

from pmed.spatial.histology import (  # noqa: E402
    colour_features,
    expression_programmes,
    spatial_blocks,
    spot_tiles,
    tile_embeddings,
    tile_geometry,
    tile_model,
)

REPO = Path(__file__).resolve().parents[2]
VISIUM = Path(os.environ.get("PMED_SHARED", REPO.parent / "shared")) / "data" / "spatial" / \
    "visium_breast_cancer_blockA1.h5ad"

COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 200, 40]], dtype=np.uint8)


def _synthetic(n_side: int = 4, pitch: int = 40, hires_scalef: float = 0.5, spot_fullres: float = 30.0,
               noise: bool = False, seed: int = 0):
    """A grid of spots over a hires image of coloured squares: spot i sits in a square of colour i % 4.

    Full-resolution coordinates are image pixels / ``hires_scalef``; the spot diameter is
    ``spot_fullres × hires_scalef`` = 15 image pixels; squares are ``pitch`` px wide.
    """
    rng = np.random.default_rng(seed)
    size = n_side * pitch
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    xy, rows, cols, colour = [], [], [], []
    for r in range(n_side):
        for c in range(n_side):
            k = (r * n_side + c) % 4
            img[r * pitch:(r + 1) * pitch, c * pitch:(c + 1) * pitch] = COLOURS[k]
            cx, cy = c * pitch + pitch // 2, r * pitch + pitch // 2
            xy.append([cx / hires_scalef, cy / hires_scalef])
            rows.append(r)
            cols.append(2 * c + r % 2)
            colour.append(k)
    if noise:
        img = rng.integers(0, 256, img.shape, dtype=np.uint8)
    n = len(xy)
    a = ad.AnnData(X=rng.poisson(2.0, (n, 30)).astype(np.float32),
                   obs=pd.DataFrame({"array_row": rows, "array_col": cols}, index=[f"s{i}" for i in range(n)]))
    a.obsm["spatial"] = np.asarray(xy, dtype=float)
    a.uns["spatial"] = {"lib1": {"images": {"hires": img},
                                 "scalefactors": {"tissue_hires_scalef": hires_scalef,
                                                  "spot_diameter_fullres": spot_fullres}}}
    return a, np.asarray(colour)


# ------------------------------------------------------------------------------ synthetic tiles
def test_module_import_does_not_pull_torch():
    code = "import sys, pmed.spatial.histology; print('torch' in sys.modules, 'anndata' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_tiles_shape_dtype_range_and_known_colours():
    a, colour = _synthetic()
    t = spot_tiles(a, scale=1.0, out_px=16)
    assert t.shape == (16, 3, 16, 16) and t.dtype == np.float32
    assert 0.0 <= t.min() and t.max() <= 1.0
    # a 15-px tile inside a 40-px square is that square's colour, resized or not
    expected = COLOURS[colour].astype(np.float32) / 255
    np.testing.assert_allclose(t.mean(axis=(2, 3)), expected, atol=1e-5)
    np.testing.assert_allclose(t.std(axis=(2, 3)), 0, atol=1e-5)
    geo = tile_geometry(a, scale=1.0)
    assert geo["spot_diameter_px"] == pytest.approx(15.0) and geo["side_px"] == 15


@pytest.mark.parametrize("side", [15, 16, 29])
def test_tiles_are_exact_crops(side):
    a, _ = _synthetic(noise=True)
    img = a.uns["spatial"]["lib1"]["images"]["hires"].astype(np.float32) / 255
    t = spot_tiles(a, size_px=side, out_px=None)
    assert t.shape == (16, 3, side, side)
    for i, (x, y) in enumerate(a.obsm["spatial"] * 0.5):
        x0, y0 = int(np.floor(x - side / 2 + 0.5)), int(np.floor(y - side / 2 + 0.5))
        manual = img[y0:y0 + side, x0:x0 + side].transpose(2, 0, 1)
        np.testing.assert_array_equal(t[i], manual)
    # out_px equal to the crop side keeps the crop exactly
    np.testing.assert_array_equal(spot_tiles(a, size_px=side, out_px=side), t)


def test_odd_tile_is_centred_on_the_spot_pixel():
    a, _ = _synthetic()
    img = np.zeros((160, 160, 3), dtype=np.uint8)
    img[20, 20] = 255  # the centre pixel of spot 0 (x = y = 20)
    a.uns["spatial"]["lib1"]["images"]["hires"] = img
    t = spot_tiles(a, size_px=5, out_px=None)
    assert t[0, :, 2, 2].tolist() == [1.0, 1.0, 1.0] and t[0].sum() == 3.0


def test_border_tiles_are_padded_white_or_edge():
    a, _ = _synthetic()
    # spot 0 is at (20, 20): a 60-px tile reaches 10 px past the top and left borders
    t = spot_tiles(a, size_px=60, out_px=None)
    assert t.shape == (16, 3, 60, 60)
    assert np.all(t[0, :, :10, :] == 1.0) and np.all(t[0, :, :, :10] == 1.0)
    np.testing.assert_allclose(t[0, :, 10, 10], COLOURS[0] / 255, atol=1e-6)
    black = spot_tiles(a, size_px=60, out_px=None, pad="constant", pad_value=0.0)
    assert np.all(black[0, :, :10, :] == 0.0)
    edge = spot_tiles(a, size_px=60, out_px=None, pad="edge")
    np.testing.assert_allclose(edge[0, :, 0, 0], COLOURS[0] / 255, atol=1e-6)


def test_float_and_grey_images_and_lowres():
    a, colour = _synthetic()
    img = a.uns["spatial"]["lib1"]["images"]["hires"]
    a.uns["spatial"]["lib1"]["images"]["hires"] = img.astype(np.float32) / 255
    np.testing.assert_allclose(spot_tiles(a, out_px=8).mean(axis=(2, 3)), COLOURS[colour] / 255, atol=1e-5)
    a.uns["spatial"]["lib1"]["images"]["lowres"] = img[::2, ::2, 0]  # grey, scale factor 0.25
    a.uns["spatial"]["lib1"]["scalefactors"]["tissue_lowres_scalef"] = 0.25
    t = spot_tiles(a, image="lowres", scale=1.0, out_px=8)
    assert t.shape == (16, 3, 8, 8)
    np.testing.assert_allclose(t[:, 0], t[:, 2])
    np.testing.assert_allclose(t[:, 0].mean(axis=(1, 2)), COLOURS[colour, 0] / 255, atol=1e-5)


def test_bad_inputs_raise_clear_errors():
    a, _ = _synthetic()
    b = a.copy()
    del b.uns["spatial"]
    with pytest.raises(InputError, match="uns\\['spatial'\\]"):
        spot_tiles(b)
    with pytest.raises(InputError, match="no 'lowres' image"):
        spot_tiles(a, image="lowres")
    b = a.copy()
    del b.uns["spatial"]["lib1"]["scalefactors"]["tissue_hires_scalef"]
    with pytest.raises(InputError, match="scale factor") as e:
        spot_tiles(b)
    assert e.value.where and e.value.fix
    b = a.copy()
    del b.uns["spatial"]["lib1"]["scalefactors"]["spot_diameter_fullres"]
    with pytest.raises(InputError, match="spot_diameter_fullres"):
        spot_tiles(b)
    assert spot_tiles(b, size_px=10, out_px=None).shape == (16, 3, 10, 10)
    for bad in (0, -3, float("nan")):
        with pytest.raises(OptionError, match="positive"):
            spot_tiles(a, size_px=bad)
    with pytest.raises(OptionError, match="scale"):
        spot_tiles(a, scale=0)
    with pytest.raises(OptionError, match="out_px"):
        spot_tiles(a, out_px=0)
    with pytest.raises(OptionError, match="pad"):
        spot_tiles(a, pad="wrap")
    b = a.copy()
    b.obsm["spatial"] = b.obsm["spatial"].copy()
    b.obsm["spatial"][3] = [5000.0, 10.0]
    with pytest.raises(InputError, match="1 spots lie outside") as e:
        spot_tiles(b)
    assert "s3" in str(e.value)
    b = a.copy()
    b.uns["spatial"]["lib2"] = b.uns["spatial"]["lib1"]
    with pytest.raises(OptionError, match="2 libraries"):
        spot_tiles(b)
    assert spot_tiles(b, library_id="lib2", out_px=4).shape == (16, 3, 4, 4)
    with pytest.raises(OptionError, match="not in"):
        spot_tiles(a, library_id="nope")


def test_blocks_colour_features_and_model_input_errors():
    a, colour = _synthetic()
    blocks = spatial_blocks(a, block_spots=2)
    assert blocks.nunique() == 4 and blocks.index.equals(a.obs_names)
    with pytest.raises(InputError, match="array_row"):
        spatial_blocks(ad.AnnData(X=a.X))
    t = spot_tiles(a, scale=1.0, out_px=8)
    f = colour_features(t)
    assert f.shape == (16, 12 + 24) and np.isfinite(f).all()
    with pytest.raises(InputError, match="labels for"):
        tile_model(t, colour[:5])
    with pytest.raises(InputError, match="single class"):
        tile_model(t, np.zeros(16))
    with pytest.raises(OptionError, match="cv"):
        tile_model(t, colour, cv=1)
    with pytest.raises(InputError, match="blocks cannot make"):
        tile_model(t, colour, groups=blocks, cv=5)
    with pytest.raises(InputError, match="tiles have shape"):
        tile_model(t[:, :1], colour)


def test_synthetic_colours_are_learned_and_embedded():
    torch.set_num_threads(1)
    a, _ = _synthetic(n_side=8, pitch=20, spot_fullres=20.0)  # 64 spots, 10-px spots in 20-px squares
    t = spot_tiles(a, scale=1.0, out_px=8)
    truth = (t.mean(axis=(2, 3))[:, 0] > 0.5).astype(int)  # red-channel-bright squares vs the rest
    res, clf = tile_model(t, pd.Series(truth, index=a.obs_names), groups=spatial_blocks(a, block_spots=2),
                          epochs=1, cv=4, n_boot=20, n_jobs=1, batch_size=16, lr=5e-3, device="cpu",
                          refit=False)
    assert res.summary.loc["colour_logreg", "accuracy"] == 1.0
    assert set(res.predictions.columns) >= {"label", "fold", "group", "cnn", "colour_logreg", "majority"}
    assert res.predictions.index.equals(a.obs_names) and (res.predictions["fold"] >= 0).all()
    assert "spatial blocks" in res.scheme and "| cnn |" in res.to_markdown()
    emb = tile_embeddings(clf, t, a.obs_names)
    assert emb.shape[0] == 64 and emb.index.equals(pd.Index(a.obs_names, name="spot"))
    assert emb.shape[1] == clf.model_.n_features
    assert tile_embeddings(clf, t, a.obs_names, n_components=3).shape == (64, 3)
    with pytest.raises(InputError, match="not unique"):
        tile_embeddings(clf, t, ["x"] * 64)


# ------------------------------------------------------------------------------ real section
@pytest.mark.realdata
@pytest.mark.skipif(not VISIUM.exists(), reason=f"{VISIUM} not available")
def test_real_section_tiles_programmes_and_cnn_beats_majority():
    torch.set_num_threads(1)
    adata = ad.read_h5ad(VISIUM)
    adata = adata[adata.obs["in_tissue"].to_numpy() == 1]
    geo = tile_geometry(adata)
    assert 14 < geo["spot_diameter_px"] < 15.5 and geo["side_px"] == 29  # hires: ~14.6 px spots, 2 diameters
    idx = np.sort(np.random.default_rng(0).choice(adata.n_obs, 600, replace=False))
    sub = adata[idx].copy()
    tiles = spot_tiles(sub, out_px=24)
    assert tiles.shape == (600, 3, 24, 24) and tiles.dtype == np.float32
    assert 0.0 <= tiles.min() and tiles.max() <= 1.0 and tiles.std() > 0.05
    labels = expression_programmes(sub, n_programmes=4, seed=0)
    assert labels.index.equals(sub.obs_names) and labels.nunique() == 4
    blocks = spatial_blocks(sub)
    # kept small for 2 shared CPU cores: 3 blocked folds, 2 epochs, half-width CNN, no refit (the
    # last fold's classifier is returned); the benchmark does the full 5-fold run
    res, clf = tile_model(tiles, labels, groups=blocks, epochs=2, cv=3, n_boot=50, n_jobs=1, width=0.5,
                          seed=0, refit=False)
    s = res.summary
    assert "spatial blocks" in res.scheme
    # observed (these settings, CPU, seed 0): CNN accuracy 0.462 vs majority 0.417 (colour baseline
    # 0.563); CNN balanced accuracy 0.353 vs 0.25 for the majority class
    assert s.loc["cnn", "accuracy"] > s.loc["majority", "accuracy"] + 0.03
    assert s.loc["cnn", "balanced_accuracy"] > 0.25 + 0.03
    emb = tile_embeddings(clf, tiles, sub.obs_names)
    assert emb.shape[0] == 600 and emb.index.equals(pd.Index(sub.obs_names, name="spot"))
    assert np.isfinite(emb.to_numpy()).all()


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_border_padding_matches_numpy_pad(mode):
    a, _ = _synthetic(noise=True)
    a.obsm["spatial"] = a.obsm["spatial"].copy()
    a.obsm["spatial"][0] = [2.0, 300.0]  # image px (1, 150): near the left and bottom borders
    side = 21
    img = a.uns["spatial"]["lib1"]["images"]["hires"].astype(np.float32) / 255
    padded = np.pad(img, ((side, side), (side, side), (0, 0)), mode=mode,
                    **({"constant_values": 1.0} if mode == "constant" else {}))
    t = spot_tiles(a, size_px=side, out_px=None, pad=mode)
    for i, (x, y) in enumerate(a.obsm["spatial"] * 0.5):
        x0, y0 = int(np.floor(x - side / 2 + 0.5)) + side, int(np.floor(y - side / 2 + 0.5)) + side
        np.testing.assert_array_equal(t[i], padded[y0:y0 + side, x0:x0 + side].transpose(2, 0, 1))
