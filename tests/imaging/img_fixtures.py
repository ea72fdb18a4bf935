"""Helpers shared by the imaging tests: one torch thread per test and pydicom's bundled files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test on one torch thread (steady timings on a shared 2-core machine)."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pydicom_file(name: str) -> Path:
    """A DICOM file bundled with pydicom (read by path); skip the test when it is absent."""
    pydicom = pytest.importorskip("pydicom")
    p = Path(pydicom.__file__).parent / "data" / "test_files" / name
    if not p.exists():
        pytest.skip(f"pydicom test file {p} is absent from this pydicom install")
    return p
