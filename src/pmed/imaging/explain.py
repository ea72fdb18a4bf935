"""Why the CNN decided: Grad-CAM and occlusion heat maps (MONAI), saved as PNG overlays.

:func:`grad_cam` weights the last convolutional stage's activations by the gradient of the
class score (Selvaraju et al. 2017) and upsamples the map to the image; :func:`occlusion`
slides a grey patch and records how much the class probability drops. :func:`save_heatmaps`
writes one overlay PNG per image (:func:`pmed.imaging.plots.heatmap_figure`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pmed.errors import InputError
from pmed.io.names import check_inside, safe_filename

__all__ = ["grad_cam", "occlusion", "save_heatmaps", "heatmap_peak"]


def _class_index(clf, target) -> int:
    if target is None:
        return len(clf.classes_) - 1
    hits = np.flatnonzero(np.asarray(clf.classes_).astype(str) == str(target))
    if not len(hits):
        raise InputError(f"class {target!r} is not one of the model's classes {clf.classes_.tolist()}",
                         fix="pass one of the model's classes")
    return int(hits[0])


def grad_cam(clf, images: np.ndarray, *, target=None, batch_size: int = 64) -> np.ndarray:
    """Grad-CAM maps of ``target`` (default: the last class, the positive one when binary).

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` maps scaled to ``[0, 1]`` per image (0 where the class gets no support).
    """
    from pmed.errors import require

    torch = require("torch", extra="imaging", feature="heat maps")
    require("monai", extra="imaging", feature="heat maps")
    from monai.visualize import GradCAM

    clf._check_fitted()
    X = clf._check_images(images, "images")
    k = _class_index(clf, target)
    model = clf.model_.eval()
    target_module = dict(model.named_modules())[model.cam_layer]
    hooks_before = (set(target_module._forward_hooks), set(target_module._backward_hooks))
    # MONAI's default post-processing rescales to [1, 0] (hot = 0); keep the raw map, scale it below
    cam = GradCAM(nn_module=model, target_layers=model.cam_layer, postprocessing=lambda x: x)
    out = []
    try:
        for start in range(0, len(X), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size])).to(clf.device_)
            m = cam(x=xb, class_idx=k)
            out.append(np.asarray(m.detach().cpu().numpy())[:, 0])
    finally:
        # MONAI never removes its hooks: drop them so that repeated calls do not pile up
        for key in set(target_module._forward_hooks) - hooks_before[0]:
            del target_module._forward_hooks[key]
        for key in set(target_module._backward_hooks) - hooks_before[1]:
            del target_module._backward_hooks[key]
        model.zero_grad(set_to_none=True)
        model.eval()
    maps = np.nan_to_num(np.concatenate(out).astype(np.float32), nan=0.0)
    maps = np.clip(maps, 0, None)
    top = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return np.where(top > 0, maps / np.where(top > 0, top, 1), 0.0).astype(np.float32)


def occlusion(clf, images: np.ndarray, *, target=None, mask_size: int | None = None,
              overlap: float = 0.5) -> np.ndarray:
    """Occlusion sensitivity: the drop in the class probability when a patch is greyed out.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` maps scaled to ``[0, 1]`` per image (1 = most important region).
    """
    from pmed.errors import require

    torch = require("torch", extra="imaging", feature="heat maps")
    require("monai", extra="imaging", feature="heat maps")
    from monai.visualize import OcclusionSensitivity

    clf._check_fitted()
    X = clf._check_images(images, "images")
    k = _class_index(clf, target)
    h = X.shape[2]
    mask = mask_size or max(3, h // 6)

    occ = OcclusionSensitivity(nn_module=clf.model_.eval(), mask_size=mask, overlap=overlap, mode="mean_img",
                               n_batch=64, verbose=False, activate=True)  # activate: softmax → probabilities
    out = []
    with torch.no_grad():
        for i in range(len(X)):
            xb = torch.from_numpy(np.ascontiguousarray(X[i:i + 1])).to(clf.device_)
            base = float(torch.softmax(clf.model_(xb), dim=1)[0, k])
            with warnings.catch_warnings():  # MONAI's own indexing style, harmless
                warnings.simplefilter("ignore", UserWarning)
                occ_map, _ = occ(xb)
            drop = base - np.asarray(occ_map[0, k].detach().cpu().numpy())
            drop = np.clip(drop, 0, None)
            out.append(drop / drop.max() if drop.max() > 0 else drop)
    return np.stack(out).astype(np.float32)


def heatmap_peak(heatmap: np.ndarray) -> tuple[int, int]:
    """(row, column) of a map's maximum."""
    r, c = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return int(r), int(c)


def save_heatmaps(
    clf,
    images: np.ndarray,
    out_dir: str | Path,
    *,
    ids: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    method: str = "gradcam",
    target=None,
    alpha: float = 0.45,
) -> list[Path]:
    """Write ``<out_dir>/<id>_<method>.png``: each image beside its heat-map overlay.

    Returns
    -------
    list of pathlib.Path
        The PNGs written, in the order of ``images``.
    """
    from pmed.imaging.plots import heatmap_figure
    from pmed.plots._base import save

    if method not in ("gradcam", "occlusion"):
        from pmed.errors import OptionError

        raise OptionError(f"method must be 'gradcam' or 'occlusion', got {str(method)[:40]!r}",
                          fix="pass method='gradcam' (CLI: --method gradcam|occlusion)")
    X = clf._check_images(images, "images")
    maps = grad_cam(clf, X, target=target) if method == "gradcam" else occlusion(clf, X, target=target)
    prob = clf.predict_proba(X)
    k = _class_index(clf, target)
    ids = [f"image_{i}" for i in range(len(X))] if ids is None else [str(i) for i in ids]
    out_dir = Path(out_dir)
    paths = []
    used: set[str] = set()  # IDs name the files: made safe, distinct, and kept inside out_dir
    for i in range(len(X)):
        title = f"{ids[i]}: P(class {clf.classes_[k]}) = {prob[i, k]:.2f}"
        if labels is not None and int(labels[i]) >= 0:
            title += f", label {labels[i]}"
        fig = heatmap_figure(X[i], maps[i], title=title, alpha=alpha,
                             method="Grad-CAM" if method == "gradcam" else "occlusion")
        # readable first (``p/1`` → ``p_1``); a hashed safe name where that would collide with
        # an earlier one, be empty or too long
        plain = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_"
                        for ch in ids[i]).lstrip(".")
        if plain and len(plain) <= 100 and plain.casefold() not in used:
            used.add(plain.casefold())
            name = plain
        else:
            name = safe_filename(ids[i], used=used)
        dest = out_dir / f"{name}_{method}.png"
        check_inside(dest, out_dir)
        paths.append(save(fig, dest))
    return paths
