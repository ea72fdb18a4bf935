import base64

import numpy as np
import pytest

from pmed.errors import InputError
from pmed.imaging.report import heatmap_section


def test_heatmap_section_embeds_the_png_in_a_patient_report(tmp_path):
    from pmed.imaging.plots import heatmap_figure
    from pmed.plots._base import save
    from pmed.report import patient_report

    img = np.zeros((28, 28))
    img[10:15, 12:17] = 1.0
    heat = np.zeros((28, 28))
    heat[9:16, 11:18] = 1.0
    png = save(heatmap_figure(img, heat, title="lesion"), tmp_path / "heat.png")
    section = heatmap_section(png)
    assert section.startswith('<section class="imaging">')
    payload = section.split("base64,")[1].split('"')[0]
    assert base64.b64decode(payload) == png.read_bytes()
    out = patient_report({"id": "X1", "prediction": 0.8, "factors": [], "sections": [section]},
                         tmp_path / "r.html")
    text = out.read_text()
    assert "regions behind the prediction" in text and "data:image/png;base64," in text


def test_missing_png_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="heat-map image not found"):
        heatmap_section(tmp_path / "nope.png")
