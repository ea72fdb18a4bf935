"""pmed.fusion.images: one grey image per patient as pixel columns, from a manifest or an npz."""

import numpy as np
import pandas as pd
import pytest

from pmed.errors import OptionError, ValidationError

pytest.importorskip("scipy")


def _npz(path, n=6, size=20):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (n, size, size), dtype=np.uint8)
    np.savez(path, train_images=imgs[:4], train_labels=np.zeros(4, int),
             test_images=imgs[4:], test_labels=np.ones(n - 4, int))
    return imgs


def test_npz_images_become_pixel_columns_named_by_split_and_index(tmp_path):
    from pmed.fusion.images import is_image_modality, read_image_block

    imgs = _npz(tmp_path / "scans.npz")
    table, prov = read_image_block(tmp_path / "scans.npz", size=20, id="pid")
    assert table.index.name == "pid" and table.index.tolist() == [*(f"train_{i}" for i in range(4)),
                                                                  "test_0", "test_1"]
    assert table.shape == (6, 400) and list(table.columns[:3]) == ["px|0|0", "px|0|1", "px|0|2"]
    assert is_image_modality(table.columns) and not is_image_modality(["px|0|0", "age"])
    # grey values scaled to [0, 1] as pmed.imaging reads them: row-major pixels of each image
    assert table.iloc[0].to_numpy() == pytest.approx(imgs[0].reshape(-1) / 255, abs=1e-6)
    assert prov == {"source": str(tmp_path / "scans.npz"), "n_images": 6, "size": 20}
    small, _ = read_image_block(tmp_path / "scans.npz", size=10)
    assert small.shape == (6, 100) and small.to_numpy().min() >= 0 and small.to_numpy().max() <= 1


def test_two_images_of_one_patient_and_bad_sizes_are_refused(tmp_path):
    from PIL import Image

    from pmed.fusion.images import read_image_block

    for i in range(3):
        Image.fromarray(np.full((12, 12), 40 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    pd.DataFrame({"patient_id": ["A", "B", "A"], "path": ["0.png", "1.png", "2.png"]}).to_csv(
        tmp_path / "m.csv", index=False)
    with pytest.raises(ValidationError, match=r"1 patients have several images \(lines 2, 4\)") as e:
        read_image_block(tmp_path / "m.csv", size=12)
    assert "'A'" not in str(e.value)
    for size in (4, 129, 2.5):
        with pytest.raises(OptionError, match="image size"):
            read_image_block(tmp_path / "m.csv", size=size)
