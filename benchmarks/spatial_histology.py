"""H&E tiles → expression programme on a real Visium section (pmed.spatial.histology).

The 10x Visium human breast carcinoma section (block A, section 1; 3,796 spots): each spot's
tile (two spot diameters of the ``hires`` image, resized to 32 px) is used to predict its
expression programme (KMeans on the top PCs of log-normalised expression, 4 programmes).
Spatially blocked 5-fold CV (blocks of 12 × 12 spots of the array grid, StratifiedGroupKFold);
pmed's compact CNN (:class:`pmed.imaging.ImageClassifier`) against the majority class and a
logistic regression on colour statistics/histograms of the tile. Prints Markdown; writes
``summary.csv``, ``folds.csv``, ``predictions.csv``, ``embeddings.csv`` and ``results.json``
under ``--out``.

Usage::

    .venv/bin/python benchmarks/spatial_histology.py --out out/spatial_histology
    .venv/bin/python benchmarks/spatial_histology.py --epochs 4 --threads 2   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))  # _common.py
from _common import default_out, results_header, run_environment  # noqa: E402

DATA = Path(os.environ.get("PMED_SHARED", ROOT.parent / "shared")) / "data" / "spatial" / \
    "visium_breast_cancer_blockA1.h5ad"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=default_out("spatial_histology"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--scale", type=float, default=2.0, help="tile side in spot diameters")
    ap.add_argument("--out-px", type=int, default=32)
    ap.add_argument("--programmes", type=int, default=4)
    ap.add_argument("--block-spots", type=int, default=12)
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    env = run_environment(["torch", "monai", "anndata", "scanpy"], argv)

    import anndata as ad
    import torch

    from pmed.spatial.histology import (
        expression_programmes,
        spatial_blocks,
        spot_tiles,
        tile_embeddings,
        tile_geometry,
        tile_model,
    )

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    adata = ad.read_h5ad(args.data)
    if "in_tissue" in adata.obs:
        adata = adata[adata.obs["in_tissue"].to_numpy() == 1].copy()
    geo = tile_geometry(adata, scale=args.scale)
    t0 = time.perf_counter()
    tiles = spot_tiles(adata, scale=args.scale, out_px=args.out_px)
    t_tiles = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = expression_programmes(adata, n_programmes=args.programmes, seed=args.seed)
    t_labels = time.perf_counter() - t0
    blocks = spatial_blocks(adata, block_spots=args.block_spots)
    res, clf = tile_model(tiles, labels, groups=blocks, arch=args.arch, width=args.width, epochs=args.epochs,
                          seed=args.seed, cv=args.cv, n_jobs=args.threads, device=args.device)
    t0 = time.perf_counter()
    emb = tile_embeddings(clf, tiles, adata.obs_names)
    t_emb = time.perf_counter() - t0
    total = time.perf_counter() - t_all

    sec = res.params["seconds"]
    print(results_header(env))
    print()
    print(f"- data: {args.data.name}, {adata.n_obs} in-tissue spots, library {geo['library_id']}")
    print(f"- tiles: {geo['image']} image (scale factor {geo['scalefactor']:.4f}); spot diameter "
          f"{geo['spot_diameter_px']:.1f} px; tile side {args.scale:g} diameters = {geo['side_px']} px, "
          f"resized to {args.out_px} px (MONAI Resize); border padding white")
    counts = labels.value_counts().sort_index()
    print(f"- labels: {args.programmes} expression programmes (KMeans on 15 PCs of 2,000 HVGs, log-normalised); "
          f"sizes {', '.join(f'{k}: {v}' for k, v in counts.items())}")
    print(f"- folds: {res.scheme}; blocks of {args.block_spots} × {args.block_spots} spots")
    print(f"- CNN: {args.arch} (width {args.width:g}), {args.epochs} epochs, batch 64, AdamW lr 2e-3 cosine, "
          f"flips + mild intensity jitter; device {res.params['device']}; {args.threads} threads")
    print(f"- time: tiles {t_tiles:.1f} s, programmes {t_labels:.1f} s, CNN CV {sec['cnn']:.1f} s "
          f"({args.cv} folds), CNN refit on all spots {sec.get('cnn_refit', float('nan')):.1f} s, colour baseline "
          f"{sec['colour_logreg']:.1f} s, embeddings {t_emb:.1f} s; total {total:.1f} s")
    print(f"- embedding: {emb.shape[0]} spots × {emb.shape[1]} dimensions")
    print()
    print(res.to_markdown())
    print()
    print("Pooled over held-out spots; 95% CI: bootstrap over spatial blocks (200 replicates); "
          f"fold mean ± SD over the {args.cv} folds.")

    res.summary.to_csv(args.out / "summary.csv")
    res.folds.to_csv(args.out / "folds.csv", index=False)
    res.predictions.to_csv(args.out / "predictions.csv")
    emb.to_csv(args.out / "embeddings.csv")
    (args.out / "results.json").write_text(json.dumps({
        "environment": env, "args": {k: str(v) for k, v in vars(args).items()},
        "geometry": {k: v for k, v in geo.items() if k != "centres"}, "scheme": res.scheme,
        "params": res.params, "summary": res.summary.reset_index().to_dict(orient="records"),
        "label_counts": {str(k): int(v) for k, v in counts.items()},
        "seconds": {"tiles": t_tiles, "programmes": t_labels, "embeddings": t_emb, "total": total, **sec},
    }, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
