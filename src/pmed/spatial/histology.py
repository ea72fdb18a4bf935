"""H&E tiles of Visium spots as image features, and what a tile says of the spot's expression.

- :func:`spot_tiles`: for each spot, the square of the section image centred on the spot
  (``obsm['spatial']`` × the image's scale factor), a few spot diameters wide, resized to
  ``out_px`` → ``(n_spots, 3, out_px, out_px)`` float32 in ``[0, 1]``.
- :func:`expression_programmes`: a simple label of each spot's expression programme (KMeans
  clusters of the top principal components of log-normalised expression).
- :func:`spatial_blocks`: square blocks of the array grid, for spatially blocked CV folds.
- :func:`tile_model`: :class:`pmed.imaging.ImageClassifier` predicting the programme from the
  tile, cross-validated over spatial blocks, beside a majority-class baseline and a
  colour-histogram logistic regression → :class:`TileModelResult` and the fitted classifier.
- :func:`tile_embeddings`: the CNN's penultimate layer per spot
  (:func:`pmed.imaging.image_embeddings`), the image modality beside the expression embedding.

Geometry. On a Visium slide spots are 55 µm across with centres 100 µm apart; in Space Ranger's
``hires`` image (scale factor ≈ 0.08 of full resolution) a spot is only ≈ 15 px wide and its
neighbours' centres ≈ 27 px away. A one-diameter tile holds little tissue, so the default tile
is two spot diameters wide (``scale=2``: the spot and a ring of context reaching half-way to its
neighbours) — ≈ 29 hires px, resized to 32 px.

torch, MONAI, anndata and scanpy are imported inside the functions that use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError, OptionError

__all__ = [
    "spot_tiles",
    "tile_geometry",
    "expression_programmes",
    "spatial_blocks",
    "colour_features",
    "tile_model",
    "TileModelResult",
    "tile_embeddings",
]

#: default tile side in spot diameters
DEFAULT_SCALE = 2.0
_PAD_MODES = ("constant", "edge", "reflect")


# ---------------------------------------------------------------------------------- geometry
def _library(adata, library_id: str | None) -> tuple[str, dict]:
    spatial = adata.uns.get("spatial") if hasattr(adata, "uns") else None
    if not isinstance(spatial, Mapping) or not spatial:
        raise InputError("the AnnData holds no uns['spatial'] (no section image)", where="uns['spatial']",
                         fix="read the Space Ranger output with its images (pmed.spatial.io / scanpy.read_visium)")
    if library_id is None:
        if len(spatial) > 1:
            raise OptionError(f"uns['spatial'] holds {len(spatial)} libraries: {', '.join(map(str, spatial))}",
                              where="library_id", fix="pass library_id= one of them")
        library_id = next(iter(spatial))
    if library_id not in spatial:
        raise OptionError(f"library {library_id!r} not in uns['spatial']", where="library_id",
                          fix=f"choose one of: {', '.join(map(str, spatial))}")
    return library_id, spatial[library_id]


def tile_geometry(adata, *, library_id: str | None = None, image: str = "hires", size_px: float | None = None,
                  scale: float = DEFAULT_SCALE) -> dict[str, Any]:
    """Where the tiles of :func:`spot_tiles` are cut: image, scale factor, spot and tile sizes.

    Parameters
    ----------
    adata, library_id, image, size_px, scale
        As for :func:`spot_tiles`.

    Returns
    -------
    dict
        ``library_id``, ``image`` (name), ``image_shape``, ``scalefactor`` (full resolution →
        image pixels), ``spot_diameter_px`` (in image pixels), ``side_px`` (the integer crop
        side) and ``centres`` (``(n_spots, 2)`` x, y in image pixels).
    """
    library_id, lib = _library(adata, library_id)
    images = lib.get("images") or {}
    if image not in images:
        raise InputError(f"no {image!r} image for library {library_id!r} (has: {', '.join(images) or 'none'})",
                         where=f"uns['spatial'][{library_id!r}]['images']",
                         fix="pass image= one of the images present, or read the section with its images")
    img = np.asarray(images[image])
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise InputError(f"the {image!r} image has shape {img.shape}; expected (H, W), (H, W, 3) or (H, W, 4)",
                         where=f"uns['spatial'][{library_id!r}]['images'][{image!r}]",
                         fix="store the image as height × width × RGB")
    sf = lib.get("scalefactors") or {}
    key = f"tissue_{image}_scalef"
    if key not in sf:
        raise InputError(f"no scale factor {key!r} for library {library_id!r}",
                         where=f"uns['spatial'][{library_id!r}]['scalefactors']",
                         fix="read the section with scalefactors_json.json (Space Ranger spatial/ folder)")
    scalef = float(sf[key])
    if not np.isfinite(scalef) or scalef <= 0:
        raise InputError(f"scale factor {key} is {scalef}, not a positive number",
                         where=f"uns['spatial'][{library_id!r}]['scalefactors']", fix="check scalefactors_json.json")
    spot_px = float(sf.get("spot_diameter_fullres", np.nan)) * scalef
    if size_px is None:
        if not np.isfinite(spot_px) or spot_px <= 0:
            raise InputError(f"no spot_diameter_fullres for library {library_id!r}, so no default tile size",
                             where=f"uns['spatial'][{library_id!r}]['scalefactors']",
                             fix="pass size_px= (tile side in image pixels)")
        if not (np.isfinite(scale) and scale > 0):
            raise OptionError(f"scale must be a positive number of spot diameters, got {scale}", where="scale",
                              fix=f"pass scale={DEFAULT_SCALE}")
        side = spot_px * float(scale)
    else:
        if not (np.isfinite(size_px) and size_px > 0):
            raise OptionError(f"tile size must be positive, got size_px={size_px}", where="size_px",
                              fix="pass size_px= a positive number of image pixels, or leave it out")
        side = float(size_px)
    side_i = max(1, int(np.floor(side + 0.5)))
    if "spatial" not in adata.obsm:
        raise InputError("no spot coordinates in obsm['spatial']", where="obsm['spatial']",
                         fix="read the section with its tissue_positions file")
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2 or len(xy) != adata.n_obs:
        raise InputError(f"obsm['spatial'] has shape {xy.shape}; expected (n_spots, 2)", where="obsm['spatial']",
                         fix="store full-resolution pixel coordinates x, y per spot")
    centres = xy[:, :2] * scalef
    h, w = img.shape[:2]
    bad = ~np.isfinite(centres).all(1) | (centres[:, 0] < 0) | (centres[:, 0] >= w) | (centres[:, 1] < 0) \
        | (centres[:, 1] >= h)
    if bad.any():
        names = ", ".join(map(str, np.asarray(adata.obs_names)[bad][:5]))
        raise InputError(f"{int(bad.sum())} spots lie outside the {w}×{h} {image!r} image (first: {names})",
                         where="obsm['spatial']",
                         fix="check that obsm['spatial'] is in full-resolution pixels (x, y) and the scale factor "
                             "belongs to this image; drop spots off the image")
    return {"library_id": library_id, "image": image, "image_shape": tuple(img.shape), "scalefactor": scalef,
            "spot_diameter_px": spot_px, "side_px": side_i, "centres": centres}


def _as_unit_rgb(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float32 in [0, 1] from a grey, RGB or RGBA image of any dtype."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    img = img[:, :, :3]
    if np.issubdtype(img.dtype, np.integer):
        out = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    elif img.dtype == bool:
        out = img.astype(np.float32)
    else:
        out = img.astype(np.float32)
        hi = float(np.nanmax(out)) if out.size else 0.0
        if hi > 1.0:
            out = out / (255.0 if hi <= 255.0 else hi)
    if not np.isfinite(out).all():
        raise InputError("the section image holds NaN or infinite values", where="uns['spatial'] image",
                         fix="clean the image")
    return np.clip(out, 0.0, 1.0)


def spot_tiles(
    adata,
    *,
    library_id: str | None = None,
    image: str = "hires",
    size_px: float | None = None,
    scale: float = DEFAULT_SCALE,
    out_px: int | None = 32,
    pad: str = "constant",
    pad_value: float = 1.0,
) -> np.ndarray:
    """One H&E tile per spot: the square of the section image centred on the spot.

    Parameters
    ----------
    adata : anndata.AnnData
        Spots with ``obsm['spatial']`` (full-resolution pixel x, y) and
        ``uns['spatial'][library_id]`` holding ``images[image]`` and
        ``scalefactors['tissue_<image>_scalef']`` (and ``spot_diameter_fullres`` unless
        ``size_px`` is given).
    library_id : str, optional
        Library in ``uns['spatial']`` (default: the only one).
    image : str
        ``"hires"`` (default) or ``"lowres"`` (any key of ``images`` with a scale factor).
    size_px : float, optional
        Tile side in pixels of ``image``; overrides ``scale``.
    scale : float
        Tile side in spot diameters (default 2: the spot plus context reaching half-way to its
        neighbours; ≈ 29 px on a Visium ``hires`` image).
    out_px : int or None
        Side of the returned tiles (default 32); ``None`` keeps the crop size. Resizing uses
        MONAI's ``Resize`` (``area`` when shrinking, bilinear with anti-aliasing off when
        enlarging); a tile already ``out_px`` wide is returned exactly as cropped.
    pad : str
        How tiles reaching past the image border are filled: ``"constant"`` (default, with
        ``pad_value``: 1.0 = white, the colour of bare glass), ``"edge"`` or ``"reflect"``.
    pad_value : float
        Fill value in ``[0, 1]`` for ``pad="constant"``.

    Returns
    -------
    numpy.ndarray
        ``(n_spots, 3, out_px, out_px)`` float32 in ``[0, 1]``, rows in ``adata.obs_names`` order.

    Notes
    -----
    The crop side is ``round(side)`` pixels; for a centre ``c`` (x or y, in image pixels,
    ``obsm['spatial'] × scale factor``) the crop covers pixels ``round(c - side/2)`` …
    ``round(c - side/2) + side - 1`` (half-up rounding), so an odd side is centred on the
    pixel holding the spot centre.

    Raises
    ------
    InputError
        No ``uns['spatial']``, image or scale factor; spots outside the image.
    OptionError
        Tile size or ``out_px`` not positive; unknown ``pad``.
    """
    if pad not in _PAD_MODES:
        raise OptionError(f"pad must be one of {', '.join(_PAD_MODES)}, got {str(pad)[:40]!r}", where="pad",
                          fix="pass pad='constant'")
    if out_px is not None and (isinstance(out_px, bool) or not isinstance(out_px, (int, np.integer)) or out_px < 1):
        raise OptionError(f"out_px must be a positive integer, got {out_px!r}", where="out_px", fix="pass out_px=32")
    if not (0.0 <= float(pad_value) <= 1.0):
        raise OptionError(f"pad_value must lie in [0, 1], got {pad_value}", where="pad_value",
                          fix="pass pad_value=1.0 (white)")
    geo = tile_geometry(adata, library_id=library_id, image=image, size_px=size_px, scale=scale)
    img = _as_unit_rgb(adata.uns["spatial"][geo["library_id"]]["images"][image])
    n = geo["side_px"]
    h, w = img.shape[:2]
    if pad == "reflect" and n >= min(h, w):
        raise OptionError(f"reflect padding needs tiles ({n} px) no wider than the image", where="pad",
                          fix="pass pad='constant'")
    start = np.floor(geo["centres"] - n / 2.0 + 0.5).astype(int)  # (x0, y0) of each crop
    tiles = np.empty((len(start), 3, n, n), dtype=np.float32)
    inside = (start[:, 0] >= 0) & (start[:, 1] >= 0) & (start[:, 0] + n <= w) & (start[:, 1] + n <= h)
    for i, (x0, y0) in enumerate(start):
        if inside[i]:
            tiles[i] = img[y0:y0 + n, x0:x0 + n].transpose(2, 0, 1)
            continue
        # only border tiles are padded: pad the window around this spot, not the whole image
        ya, yb, xa, xb = max(y0, 0), min(y0 + n, h), max(x0, 0), min(x0 + n, w)
        pads = ((ya - y0, y0 + n - yb), (xa - x0, x0 + n - xb), (0, 0))
        if pad == "constant":
            crop = np.pad(img[ya:yb, xa:xb], pads, mode="constant", constant_values=float(pad_value))
        else:  # the indices numpy.pad's "edge" / "reflect" would read
            rows, cols = np.arange(y0, y0 + n), np.arange(x0, x0 + n)
            if pad == "edge":
                rows, cols = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
            else:
                rows = np.where(rows < 0, -rows, np.where(rows >= h, 2 * (h - 1) - rows, rows))
                cols = np.where(cols < 0, -cols, np.where(cols >= w, 2 * (w - 1) - cols, cols))
            crop = img[np.ix_(rows, cols)]
        tiles[i] = crop.transpose(2, 0, 1)
    if out_px is None or int(out_px) == n or len(tiles) == 0:
        return tiles
    return _resize(tiles, int(out_px))


def _resize(tiles: np.ndarray, out_px: int) -> np.ndarray:
    from pmed.errors import require

    require("monai", extra="imaging", feature="resizing H&E tiles")
    from monai.transforms import Resize

    n_spots, c, h, _ = tiles.shape
    mode = "area" if out_px < h else "bilinear"
    resize = Resize((out_px, out_px), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    out = np.empty((n_spots, c, out_px, out_px), dtype=np.float32)
    step = 512  # spots × channels are resized together as the channels of one image
    for s in range(0, n_spots, step):
        chunk = tiles[s:s + step]
        r = resize(chunk.reshape(-1, h, h))
        r = r.numpy() if hasattr(r, "numpy") else np.asarray(r)
        out[s:s + step] = np.asarray(r, dtype=np.float32).reshape(len(chunk), c, out_px, out_px)
    return np.clip(out, 0.0, 1.0)


# ---------------------------------------------------------------------------------- labels
def expression_programmes(adata, *, n_programmes: int = 4, n_pcs: int = 15, n_top_genes: int = 2000,
                          seed: int = 0) -> pd.Series:
    """Label each spot with its expression programme: KMeans clusters of top expression PCs.

    Counts are normalised to 10,000 per spot and ``log1p``-transformed, the ``n_top_genes``
    most variable genes (scanpy, Seurat flavour) are scaled to unit variance (clipped at 10),
    and KMeans (``n_init=10``) groups the spots' first ``n_pcs`` principal components into
    ``n_programmes`` clusters. Clusters are numbered by size, 0 the largest.

    Parameters
    ----------
    adata : anndata.AnnData
        Raw counts in ``X`` (spots × genes); the object is not modified.
    n_programmes : int
        Number of programmes (clusters), at least 2.
    n_pcs : int
        Principal components clustered.
    n_top_genes : int
        Highly variable genes kept.
    seed : int
        Seed of the PCA solver and KMeans.

    Returns
    -------
    pandas.Series
        ``programme`` (int, 0 … n_programmes-1) indexed by ``adata.obs_names`` (``spot``).
    """
    from pmed.errors import require

    require("scanpy", extra="omics", feature="expression programmes")
    import scanpy as sc
    from sklearn.cluster import KMeans

    if isinstance(n_programmes, bool) or not isinstance(n_programmes, (int, np.integer)) or n_programmes < 2:
        raise OptionError(f"n_programmes must be an integer ≥ 2, got {n_programmes!r}", where="n_programmes",
                          fix="pass n_programmes=4")
    if adata.n_obs <= n_programmes:
        raise InputError(f"{adata.n_obs} spots cannot form {n_programmes} programmes", where="adata",
                         fix="pass more spots or fewer programmes")
    a = adata.copy()
    x = a.X
    xmin = x.min() if not hasattr(x, "toarray") else (x.data.min() if x.nnz else 0)
    if xmin < 0:
        raise InputError("X holds negative values; expected raw counts", where="X",
                         fix="pass raw counts (adata.raw.to_adata() or layers['counts'])")
    sc.pp.filter_genes(a, min_cells=1)
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    n_top = min(int(n_top_genes), a.n_vars)
    sc.pp.highly_variable_genes(a, n_top_genes=n_top, flavor="seurat")
    a = a[:, a.var["highly_variable"].to_numpy()].copy()
    if hasattr(a.X, "toarray"):
        a.X = a.X.toarray()  # spots × HVGs is small; scaling densifies anyway
    sc.pp.scale(a, max_value=10)
    k = int(max(2, min(n_pcs, a.n_vars - 1, a.n_obs - 1)))
    sc.tl.pca(a, n_comps=k, random_state=seed)
    lab = KMeans(n_clusters=int(n_programmes), n_init=10, random_state=seed).fit_predict(a.obsm["X_pca"])
    order = np.argsort(-np.bincount(lab, minlength=n_programmes), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return pd.Series(rank[lab].astype(int), index=pd.Index(adata.obs_names, name="spot"), name="programme")


def spatial_blocks(adata, *, block_spots: int = 12) -> pd.Series:
    """Square blocks of the Visium array grid, for spatially blocked cross-validation.

    A block spans ``block_spots`` rows of ``obs['array_row']`` and ``2 × block_spots`` of
    ``obs['array_col']`` (columns of the hexagonal grid step by 2), i.e. about
    ``block_spots × block_spots`` spots (1.2 mm × 1.2 mm at the default 12).

    Parameters
    ----------
    adata : anndata.AnnData
        Spots with ``obs['array_row']`` and ``obs['array_col']``.
    block_spots : int
        Block side in spots.

    Returns
    -------
    pandas.Series
        ``block`` (str ``"r<i>c<j>"``) indexed by ``adata.obs_names``.
    """
    if isinstance(block_spots, bool) or not isinstance(block_spots, (int, np.integer)) or block_spots < 1:
        raise OptionError(f"block_spots must be a positive integer, got {block_spots!r}", where="block_spots",
                          fix="pass block_spots=12")
    missing = [c for c in ("array_row", "array_col") if c not in adata.obs]
    if missing:
        raise InputError(f"obs lacks {', '.join(missing)}", where="obs",
                         fix="read the section with its tissue_positions file (array_row, array_col)")
    r = adata.obs["array_row"].to_numpy(dtype=int) // int(block_spots)
    c = adata.obs["array_col"].to_numpy(dtype=int) // (2 * int(block_spots))
    return pd.Series([f"r{i}c{j}" for i, j in zip(r, c, strict=True)],
                     index=pd.Index(adata.obs_names, name="spot"), name="block")


# ---------------------------------------------------------------------------------- models
def colour_features(tiles: np.ndarray, *, bins: int = 8) -> np.ndarray:
    """Colour summary of each tile: mean and SD of R, G, B, H, S, V and ``bins``-bin H, S, V histograms.

    Parameters
    ----------
    tiles : numpy.ndarray
        ``(N, 3, H, W)`` RGB in ``[0, 1]``.
    bins : int
        Histogram bins per HSV channel.

    Returns
    -------
    numpy.ndarray
        ``(N, 12 + 3 · bins)`` float.
    """
    from matplotlib.colors import rgb_to_hsv

    t = _check_tiles(tiles)
    rgb = t.transpose(0, 2, 3, 1)
    hsv = rgb_to_hsv(np.clip(rgb, 0, 1))
    n = len(t)
    feats = [rgb.reshape(n, -1, 3).mean(1), rgb.reshape(n, -1, 3).std(1),
             hsv.reshape(n, -1, 3).mean(1), hsv.reshape(n, -1, 3).std(1)]
    edges = np.linspace(0, 1, bins + 1)
    for ch in range(3):
        v = hsv[..., ch].reshape(n, -1)
        idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
        hist = np.zeros((n, bins))
        np.add.at(hist, (np.repeat(np.arange(n), v.shape[1]), idx.ravel()), 1.0)
        feats.append(hist / v.shape[1])
    return np.hstack(feats)


def _check_tiles(tiles) -> np.ndarray:
    t = np.asarray(tiles, dtype=np.float32)
    if t.ndim != 4 or t.shape[1] != 3 or len(t) == 0:
        raise InputError(f"tiles have shape {t.shape}; expected (n_spots, 3, H, W)", where="tiles",
                         fix="pass the output of spot_tiles()")
    return t


@dataclass
class TileModelResult:
    """Cross-validated programme prediction from tiles (:func:`tile_model`).

    Attributes
    ----------
    predictions : pandas.DataFrame
        Per spot: ``label``, ``fold``, ``group`` and the held-out prediction of each model
        (``cnn``, ``colour_logreg``, ``majority``).
    folds : pandas.DataFrame
        Per model and fold: ``n``, ``accuracy``, ``balanced_accuracy``.
    summary : pandas.DataFrame
        Per model: pooled ``accuracy`` / ``balanced_accuracy`` over all held-out spots, their
        95% block-bootstrap intervals (``*_lo``, ``*_hi``: groups resampled with replacement)
        and the mean and SD over folds (``*_fold_mean``, ``*_fold_sd``).
    scheme : str
        How the folds were made (``"spatial blocks (StratifiedGroupKFold, 20 blocks)"``…).
    params : dict
        The settings of the run; ``seconds`` per model.
    """

    predictions: pd.DataFrame
    folds: pd.DataFrame
    summary: pd.DataFrame
    scheme: str
    params: dict = field(default_factory=dict)

    def to_markdown(self, digits: int = 3) -> str:
        """The summary as a Markdown table (accuracy and balanced accuracy, CI, fold spread)."""
        f = f"{{:.{digits}f}}"
        lines = ["| model | accuracy (95% CI) | fold mean ± SD | balanced accuracy (95% CI) | fold mean ± SD |",
                 "|---|---|---|---|---|"]
        for name, r in self.summary.iterrows():
            cells = []
            for m in ("accuracy", "balanced_accuracy"):
                cells.append(f"{f.format(r[m])} ({f.format(r[m + '_lo'])}–{f.format(r[m + '_hi'])})")
                cells.append(f"{f.format(r[m + '_fold_mean'])} ± {f.format(r[m + '_fold_sd'])}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _folds(labels: np.ndarray, groups: np.ndarray | None, cv: int, seed: int) -> tuple[np.ndarray, str]:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    fold = np.full(len(labels), -1, dtype=int)
    if groups is None:
        split = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
        scheme = f"random stratified {cv}-fold (optimistic: neighbouring spots share tissue)"
    else:
        n_groups = len(np.unique(groups))
        if n_groups < cv:
            raise InputError(f"{n_groups} spatial blocks cannot make {cv} folds", where="groups",
                             fix="use smaller blocks (spatial_blocks(block_spots=...)) or fewer folds")
        split = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=seed).split(
            np.zeros(len(labels)), labels, groups)
        scheme = f"spatial blocks, StratifiedGroupKFold {cv}-fold over {n_groups} blocks"
    for i, (_, test) in enumerate(split):
        fold[test] = i
    return fold, scheme


def _bootstrap_ci(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, metric, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    ug, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(ug))]
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(ug), len(ug))
        idx = np.concatenate([members[g] for g in pick])
        if len(np.unique(y[idx])) < 2:
            continue
        vals.append(metric(y[idx], pred[idx]))
    if not vals:
        return float("nan"), float("nan")
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def _make_classifier(arch: str, width: float, epochs: int, seed: int, batch_size: int, lr: float,
                     n_jobs: int | None, device: str | None):
    from pmed.imaging.train import ImageClassifier
    from pmed.imaging.transforms import AugmentConfig

    # tissue has no up or down: flip both ways; no rotation or crop (per-image MONAI resampling
    # doubles the CPU time of a small CNN); colour jitter stays mild (stain is signal)
    aug = AugmentConfig(flip_lr=0.5, flip_ud=0.5, rotate_prob=0.0, crop_prob=0.0, contrast=0.1, shift=0.03,
                        noise=0.01, intensity_prob=0.5)
    return ImageClassifier(arch=arch, width=width, max_epochs=epochs, batch_size=batch_size, lr=lr, patience=None,
                           augment=aug, device=device, random_state=seed, n_jobs=n_jobs)


def tile_model(
    tiles: np.ndarray,
    labels: Sequence | pd.Series,
    *,
    groups: Sequence | pd.Series | None = None,
    arch: str = "cnn",
    width: float = 1.0,
    epochs: int = 10,
    seed: int = 0,
    cv: int = 5,
    batch_size: int = 64,
    lr: float = 2e-3,
    refit: bool = True,
    n_boot: int = 200,
    n_jobs: int | None = None,
    device: str | None = "auto",
) -> tuple[TileModelResult, Any]:
    """Predict each spot's expression programme from its tile, cross-validated over spatial blocks.

    Three models see the same folds: pmed's CNN (:class:`pmed.imaging.ImageClassifier` on the
    tiles, trained ``epochs`` epochs without early stopping, with random flips and mild
    intensity jitter), a colour baseline (standardised logistic regression on
    :func:`colour_features`) and the majority class of the training folds.

    Parameters
    ----------
    tiles : numpy.ndarray
        ``(n_spots, 3, H, W)`` from :func:`spot_tiles`.
    labels : sequence or pandas.Series
        Programme of each spot (e.g. :func:`expression_programmes`).
    groups : sequence or pandas.Series, optional
        Spatial block of each spot (:func:`spatial_blocks`): folds keep whole blocks together
        (scikit-learn's ``StratifiedGroupKFold``). Without it folds are random and stratified —
        optimistic, as neighbouring spots share tissue and expression.
    arch : str
        ``"cnn"`` (compact CNN, default: fast on CPU) or ``"resnet18"`` (MONAI).
    width : float
        Channel multiplier of the network.
    epochs : int
        Training epochs per fold.
    seed : int
        Seed of the folds, the networks and the bootstrap.
    cv : int
        Number of folds.
    batch_size, lr
        ImageClassifier mini-batch size and AdamW learning rate.
    refit : bool
        Also fit the CNN on all spots (returned); otherwise the last fold's model is returned.
    n_boot : int
        Block-bootstrap replicates of the pooled metrics' 95% intervals.
    n_jobs : int, optional
        PyTorch CPU threads while fitting.
    device : str, optional
        ``"auto"`` (GPU when present), ``"cuda"`` or ``"cpu"``.

    Returns
    -------
    tuple of (TileModelResult, ImageClassifier)
        The cross-validated predictions and metrics, and the fitted classifier.
    """
    import time

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t = _check_tiles(tiles)
    index = labels.index if isinstance(labels, pd.Series) else pd.RangeIndex(len(t), name="spot")
    y = np.asarray(labels)
    if len(y) != len(t):
        raise InputError(f"{len(y)} labels for {len(t)} tiles", where="labels", fix="pass one label per tile")
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise OptionError(f"cv must be an integer ≥ 2, got {cv!r}", where="cv", fix="pass cv=5")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise OptionError(f"epochs must be a positive integer, got {epochs!r}", where="epochs", fix="pass epochs=10")
    if pd.isna(pd.Series(y)).any():
        raise InputError("labels hold missing values", where="labels", fix="label every spot")
    if len(np.unique(y)) < 2:
        raise InputError("the labels hold a single class", where="labels", fix="pass two or more programmes")
    g = None
    if groups is not None:
        g = np.asarray(groups).astype(str)
        if len(g) != len(t):
            raise InputError(f"{len(g)} groups for {len(t)} tiles", where="groups", fix="pass one block per tile")
    fold, scheme = _folds(y, g, int(cv), seed)
    colour = colour_features(t)
    preds = {m: np.empty(len(y), dtype=y.dtype) for m in ("cnn", "colour_logreg", "majority")}
    seconds = dict.fromkeys(preds, 0.0)
    clf = None
    for k in range(int(cv)):
        tr, te = fold != k, fold == k
        if not te.any():
            continue
        vals, counts = np.unique(y[tr], return_counts=True)
        preds["majority"][te] = vals[np.argmax(counts)]
        t0 = time.perf_counter()
        lr_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        preds["colour_logreg"][te] = lr_model.fit(colour[tr], y[tr]).predict(colour[te])
        seconds["colour_logreg"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        clf = _make_classifier(arch, width, int(epochs), seed, batch_size, lr, n_jobs, device).fit(t[tr], y[tr])
        preds["cnn"][te] = clf.predict(t[te])
        seconds["cnn"] += time.perf_counter() - t0
    group_for_ci = g if g is not None else np.arange(len(y)).astype(str)
    rows, summ = [], []
    for m, p in preds.items():
        fold_acc, fold_bal = [], []
        for k in range(int(cv)):
            te = fold == k
            if not te.any():
                continue
            a, b = accuracy_score(y[te], p[te]), balanced_accuracy_score(y[te], p[te])
            fold_acc.append(a)
            fold_bal.append(b)
            rows.append({"model": m, "fold": k, "n": int(te.sum()), "accuracy": a, "balanced_accuracy": b})
        acc_lo, acc_hi = _bootstrap_ci(y, p, group_for_ci, accuracy_score, n_boot, seed)
        bal_lo, bal_hi = _bootstrap_ci(y, p, group_for_ci, balanced_accuracy_score, n_boot, seed)
        summ.append({"model": m, "accuracy": accuracy_score(y, p), "accuracy_lo": acc_lo, "accuracy_hi": acc_hi,
                     "accuracy_fold_mean": float(np.mean(fold_acc)), "accuracy_fold_sd": float(np.std(fold_acc, ddof=1)),
                     "balanced_accuracy": balanced_accuracy_score(y, p), "balanced_accuracy_lo": bal_lo,
                     "balanced_accuracy_hi": bal_hi, "balanced_accuracy_fold_mean": float(np.mean(fold_bal)),
                     "balanced_accuracy_fold_sd": float(np.std(fold_bal, ddof=1))})
    if refit:
        t0 = time.perf_counter()
        clf = _make_classifier(arch, width, int(epochs), seed, batch_size, lr, n_jobs, device).fit(t, y)
        seconds["cnn_refit"] = time.perf_counter() - t0
    pred_df = pd.DataFrame({"label": y, "fold": fold, "group": group_for_ci, **preds}, index=index)
    result = TileModelResult(
        predictions=pred_df, folds=pd.DataFrame(rows), summary=pd.DataFrame(summ).set_index("model"),
        scheme=scheme,
        params={"arch": arch, "width": width, "epochs": int(epochs), "seed": seed, "cv": int(cv), "batch_size": batch_size,
                "lr": lr, "tile_shape": tuple(int(s) for s in t.shape[1:]), "n_spots": len(t),
                "device": str(getattr(clf, "device_", "")), "seconds": seconds})
    return result, clf


def tile_embeddings(clf, tiles: np.ndarray, spot_ids: Sequence[str], *, n_components: int | None = None,
                    prefix: str = "hist_emb_", seed: int = 0) -> pd.DataFrame:
    """The CNN's penultimate-layer embedding of each spot's tile (spot × embedding).

    Parameters
    ----------
    clf : pmed.imaging.ImageClassifier
        Fitted on tiles of the same shape (e.g. the classifier from :func:`tile_model`).
    tiles : numpy.ndarray
        ``(n_spots, 3, H, W)`` from :func:`spot_tiles`.
    spot_ids : sequence of str
        Unique ID of each spot (``adata.obs_names``).
    n_components : int, optional
        Reduce to this many principal components (fitted on these tiles).
    prefix : str
        Column name prefix.
    seed : int
        Seed of the PCA solver.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``spot`` in the order given, one float column per dimension.
    """
    from pmed.imaging.embeddings import image_embeddings

    t = _check_tiles(tiles)
    ids = pd.Index(np.asarray(spot_ids, dtype=str), name="spot")
    if len(ids) != len(t):
        raise InputError(f"{len(ids)} spot IDs for {len(t)} tiles", where="spot_ids", fix="pass one ID per tile")
    if ids.has_duplicates:
        dup = ", ".join(ids[ids.duplicated()][:5])
        raise InputError(f"spot IDs are not unique (e.g. {dup})", where="spot_ids",
                         fix="pass adata.obs_names (made unique with adata.obs_names_make_unique())")
    emb = image_embeddings(clf, t, ids, prefix=prefix, n_components=n_components, seed=seed)
    emb = emb.reindex(ids)
    emb.index.name = "spot"
    return emb
