"""Maps of a section: spots or cells coloured by a label, over the H&E image when there is one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["plot_domains"]


def plot_domains(adata: anndata.AnnData, key: str, path: str | Path, *, image: str = "hires",
                 title: str | None = None, alpha: float = 0.75) -> Path:
    """Draw ``obs[key]`` at each spot's position, over the section's H&E ``image`` when present.

    Spots are drawn at their true diameter (``spot_diameter_fullres`` × the image's scale
    factor); cells as small dots. Returns ``path`` (PNG), written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from pmed.io import atomic_path

    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    labels = pd.Categorical(adata.obs[key].astype(str))
    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    size = 4.0
    libs = adata.uns.get("spatial", {})
    lib = next(iter(libs.values()), None) if hasattr(libs, "values") else None
    if lib is not None and image in lib.get("images", {}):
        img = np.asarray(lib["images"][image])
        scale = float(lib["scalefactors"][f"tissue_{image}_scalef"])
        ax.imshow(img if img.dtype != np.float64 or img.max() <= 1 else img / 255.0)
        xy = xy * scale
        diameter = float(lib["scalefactors"].get("spot_diameter_fullres", 0)) * scale
        # marker size in points²: the spot's diameter in data pixels at this figure's scale
        px_per_point = fig.dpi / 72.0
        data_to_px = 7 * fig.dpi / img.shape[1]
        size = max((diameter * data_to_px / px_per_point) ** 2, 1.0)
    else:
        ax.invert_yaxis()
    cmap = plt.get_cmap("tab20" if len(labels.categories) > 10 else "tab10")
    for i, cat in enumerate(labels.categories):
        m = np.asarray(labels == cat)
        ax.scatter(xy[m, 0], xy[m, 1], s=size, color=cmap(i % cmap.N), label=f"{cat} ({m.sum()})",
                   alpha=alpha, linewidths=0)
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, markerscale=2, frameon=False)
    ax.set_title(title or key)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
