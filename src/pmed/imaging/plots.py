"""Figures for imaging: heat-map overlays and training curves (matplotlib, no computation)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["heatmap_figure", "training_curves"]


def heatmap_figure(image: np.ndarray, heatmap: np.ndarray, *, title: str = "", alpha: float = 0.45,
                   method: str = "Grad-CAM"):
    """The image (grey) beside the same image with ``heatmap`` overlaid (jet colormap).

    Parameters
    ----------
    image
        ``(C, H, W)`` or ``(H, W)`` in ``[0, 1]`` (the first channel is shown).
    heatmap
        ``(H, W)`` in ``[0, 1]``.
    """
    from pmed.plots._base import _plt

    plt = _plt()
    img = np.asarray(image)
    img = img[0] if img.ndim == 3 else img
    fig, ax = plt.subplots(1, 2, figsize=(6.4, 3.4))
    ax[0].imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax[0].set_title("image", fontsize=9)
    ax[1].imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    im = ax[1].imshow(heatmap, cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
    ax[1].set_title(method, fontsize=9)
    for a in ax:
        a.set_axis_off()
    fig.colorbar(im, ax=ax[1], fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def training_curves(history: pd.DataFrame, *, title: str = "training"):
    """Training/validation loss and validation AUROC per epoch."""
    from pmed.plots._base import _plt

    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(8, 3.2))
    ax[0].plot(history["epoch"], history["train_loss"], label="train")
    if "val_loss" in history:
        ax[0].plot(history["epoch"], history["val_loss"], label="validation")
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("cross-entropy")
    ax[0].legend(frameon=False)
    if "val_auroc" in history:
        ax[1].plot(history["epoch"], history["val_auroc"], label="AUROC")
        ax[1].plot(history["epoch"], history["val_accuracy"], label="accuracy")
        ax[1].set_ylim(0, 1)
        ax[1].legend(frameon=False)
    ax[1].set_xlabel("epoch")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
