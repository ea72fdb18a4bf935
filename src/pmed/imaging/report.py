"""Heat maps in patient reports: an HTML section for :func:`pmed.study.predict.write_patient_reports`."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from pmed.errors import InputError

__all__ = ["heatmap_section"]


def heatmap_section(png: str | Path, *, title: str = "Image: regions behind the prediction",
                    caption: str = "Grad-CAM heat map over the image: warmer regions raised the "
                                   "predicted probability most.") -> str:
    """One ``<section>`` embedding a heat-map PNG (from :func:`pmed.imaging.save_heatmaps`).

    The image is embedded as a data URI, so the report stays a single self-contained file.
    """
    png = Path(png)
    if not png.is_file():
        raise InputError("heat-map image not found", file=png,
                         fix="write it first with `pmed imaging explain` or save_heatmaps()")
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<section class="imaging"><h2>{html.escape(title)}</h2>'
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}" '
            f'style="max-width:420px"><figcaption>{html.escape(caption)}</figcaption></figure>'
            "</section>")
