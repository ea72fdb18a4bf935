"""Imaging contract case: a compact CNN trained for 2 epochs on 40 synthetic 28×28 lesion images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ENTRY = "pmed.imaging.run_imaging"
INPUT_ROLES = ["data"]


def run(tmp_path: Path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    from pmed.imaging import run_imaging
    from pmed.imaging.synthetic import make_lesion_images

    X, y, _ = make_lesion_images(40, size=28, seed=0)
    u8 = np.round(X[:, 0] * 255).astype(np.uint8)
    data = tmp_path / "lesions.npz"
    np.savez(data, train_images=u8[:30], train_labels=y[:30, None], val_images=u8[30:],
             val_labels=y[30:, None])
    threads = torch.get_num_threads()
    try:
        return run_imaging(data, arch="cnn", width=0.5, epochs=2, batch_size=16, n_boot=20, device="cpu",
                           seed=0, n_jobs=1)
    finally:
        torch.set_num_threads(threads)
