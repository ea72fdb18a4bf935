"""Synthetic Visium-like sections with known tissue regions (for tests and the demo).

A hexagonal spot grid holds a round tumour nest in stroma with an immune band at the tumour's
margin; ``infiltration`` moves immune cells from the margin into the tumour ("inflamed" against
"excluded" tumours). Each spot's counts are Poisson draws from a mixture of the compartments'
expression profiles (the compartment markers of :data:`pmed.spatial.domains.COMPARTMENT_MARKERS`
high in their compartment, a few hundred background genes shared), with spot-to-spot depth
variation, so that a single spot is noisy and only its neighbourhood tells its region.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["synthetic_section", "REGIONS"]

REGIONS = ("tumour", "stroma", "immune")


def synthetic_section(*, n_rows: int = 30, n_cols: int = 30, infiltration: float = 0.1, n_background: int = 300,
                      depth: float = 1500.0, purity: float = 0.7, seed: int = 0):
    """A section with its true regions in ``obs['region']``.

    Parameters
    ----------
    n_rows, n_cols
        Spots per row and rows (``array_row``/``array_col`` follow Visium: columns step by 2,
        odd rows shifted by one).
    infiltration
        Share of immune cells inside the tumour nest (0: excluded, 0.5: inflamed).
    n_background
        Genes expressed alike in every compartment.
    depth
        Mean counts per spot.
    purity
        Share of a spot's cells from its own region (the rest from the section's mix): lower is
        noisier.
    seed
        Seeds the draws.

    Returns
    -------
    anndata.AnnData
        Raw counts, ``obs`` ``array_row``, ``array_col``, ``region``, ``immune_fraction`` (true),
        ``obsm['spatial']`` in µm-like units (100 between neighbouring spot centres).
    """
    import anndata
    from scipy import sparse

    from pmed.spatial.domains import COMPARTMENT_MARKERS

    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    rows = rows.ravel()
    cols = 2 * cols.ravel() + (rows % 2)
    x = cols * 50.0
    y = rows * 100.0 * np.sqrt(3) / 2
    cx, cy = x.mean(), y.mean()
    r = np.hypot(x - cx, y - cy)
    radius = 0.28 * min(x.max() - x.min(), y.max() - y.min())
    region = np.where(r < radius, "tumour", np.where(r < radius + 170, "immune", "stroma"))
    genes = [g for c in ("tumour", "immune", "stroma") for g in COMPARTMENT_MARKERS[c]]
    genes += [f"BG{i:03d}" for i in range(n_background)]
    base = rng.gamma(2.0, 1.0, len(genes))
    profiles = {}
    for comp in REGIONS:
        p = base.copy()
        idx = [genes.index(g) for g in COMPARTMENT_MARKERS[comp]]
        p[idx] *= 25.0
        profiles[comp] = p / p.sum()
    # each spot: its region's cells, immune cells infiltrating the tumour, the section's mix
    mix = np.zeros((len(region), 3))
    own = {c: i for i, c in enumerate(REGIONS)}
    for i, reg in enumerate(region):
        w = np.zeros(3)
        w[own[reg]] = purity
        if reg == "tumour":
            w[own["immune"]] += purity * infiltration
            w[own["tumour"]] -= purity * infiltration
        w += (1 - purity) * np.array([np.mean(region == c) for c in REGIONS])
        mix[i] = w / w.sum()
    P = mix @ np.vstack([profiles[c] for c in REGIONS])
    lib = rng.gamma(4.0, depth / 4.0, len(region))
    counts = rng.poisson(P * lib[:, None])
    obs = pd.DataFrame({"array_row": rows, "array_col": cols, "region": pd.Categorical(region),
                        "immune_fraction": mix[:, own["immune"]], "in_tissue": 1},
                       index=[f"spot{i:04d}" for i in range(len(region))])
    adata = anndata.AnnData(X=sparse.csr_matrix(counts.astype(np.float32)), obs=obs,
                            var=pd.DataFrame(index=genes))
    adata.obsm["spatial"] = np.column_stack([x, y])
    adata.uns["pmed_spatial"] = {"source": "synthetic", "format": "synthetic", "platform": "visium"}
    return adata
