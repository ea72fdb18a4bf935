"""Fuzzed image readers: random, truncated and mutated DICOM, NIfTI, PNG/JPEG, manifests and
MedMNIST ``.npz`` files give a result or a :class:`pmed.errors.PmedError`, never another exception."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pmed.errors import PmedError  # noqa: E402
from pmed.imaging import readers as R  # noqa: E402

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)


def _outcome(fn, *args, **kw):
    """Call a reader: its result, or the PmedError it raised; any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom and Pillow warn about what they repair
        try:
            return fn(*args, **kw)
        except PmedError as e:
            assert str(e)  # a message, naming the file where there is one
            return e


@st.composite
def mutated(draw, seeds: list[bytes]):
    """One of ``seeds``, truncated, with bytes overwritten or inserted, or pure noise."""
    data = bytearray(draw(st.sampled_from(seeds)))
    kind = draw(st.sampled_from(["truncate", "flip", "flip", "insert", "noise"]))
    if kind == "noise":
        return draw(st.binary(max_size=2048))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:])
    for _ in range(draw(st.integers(1, 8))):
        # headers are where parsers go wrong: bias half the flips into the first 400 bytes
        hi = min(len(data), 400) if draw(st.booleans()) else len(data)
        if hi:
            data[draw(st.integers(0, hi - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# --------------------------------------------------------------------------- DICOM

def _dicom_seeds() -> list[bytes]:
    pydicom = pytest.importorskip("pydicom")
    folder = Path(pydicom.__file__).parent / "data" / "test_files"
    names = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "JPEG-lossy.dcm", "rtplan.dcm",
             "SC_rgb_small_odd.dcm", "rtdose_1frame.dcm", "no_meta.dcm"]
    seeds = [(folder / n).read_bytes() for n in names if (folder / n).exists()]
    if not seeds:
        pytest.skip("pydicom's bundled test files are absent")
    return seeds


DICOM_SEEDS = _dicom_seeds() if __import__("importlib").util.find_spec("pydicom") else [b""]


@FUZZ
@given(data=mutated(DICOM_SEEDS), window=st.sampled_from([None, "dicom", (40.0, 400.0)]))
def test_fuzz_dicom(work, data, window):
    p = work / "fuzz.dcm"
    p.write_bytes(data)
    img = _outcome(R.read_dicom, p, window=window)
    if isinstance(img, R.Image):
        assert img.pixels.ndim >= 2
        _outcome(R.read_image, p)


@FUZZ
@given(data=mutated(DICOM_SEEDS))
def test_fuzz_dicom_series(work, data):
    folder = work / "series"
    folder.mkdir(exist_ok=True)
    (folder / "a.dcm").write_bytes(DICOM_SEEDS[0])
    (folder / "b.dcm").write_bytes(data)
    _outcome(R.read_dicom_series, folder)


# --------------------------------------------------------------------------- NIfTI

def _nifti_seeds() -> list[bytes]:
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(0)
    img = nib.Nifti1Image(rng.random((6, 5, 3)).astype(np.float32), np.diag([0.8, 0.8, 2.0, 1.0]))
    raw = img.to_bytes()
    buf = io.BytesIO()
    import gzip

    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(raw)
    return [raw, buf.getvalue()]


NIFTI_SEEDS = _nifti_seeds() if __import__("importlib").util.find_spec("nibabel") else [b""]


@FUZZ
@given(data=mutated(NIFTI_SEEDS), gz=st.booleans())
def test_fuzz_nifti(work, data, gz):
    p = work / ("fuzz.nii.gz" if gz else "fuzz.nii")
    p.write_bytes(data)
    vol = _outcome(R.read_nifti, p)
    if isinstance(vol, R.Volume):
        assert vol.pixels.ndim == 3
        _outcome(R.read_image, p, volume_slice="mip")


# --------------------------------------------------------------------------- PNG / JPEG

def _raster_seeds() -> list[bytes]:
    PIL = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    out = []
    for mode, fmt in (("L", "PNG"), ("RGB", "PNG"), ("RGB", "JPEG"), ("I;16", "PNG")):
        a = rng.integers(0, 255, size=(12, 10, 3) if mode == "RGB" else (12, 10)).astype(
            np.uint16 if mode == "I;16" else np.uint8)
        buf = io.BytesIO()
        PIL.fromarray(a, mode=None).save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


RASTER_SEEDS = _raster_seeds() if __import__("importlib").util.find_spec("PIL") else [b""]


@FUZZ
@given(data=mutated(RASTER_SEEDS), suffix=st.sampled_from([".png", ".jpg", ".tif"]),
       grayscale=st.booleans())
def test_fuzz_raster(work, data, suffix, grayscale):
    p = work / f"fuzz{suffix}"
    p.write_bytes(data)
    img = _outcome(R.read_raster, p, grayscale=grayscale)
    if isinstance(img, R.Image):
        _outcome(R.read_image, p)


# --------------------------------------------------------------------------- manifests

CELLS = st.one_of(
    st.sampled_from(["img0.png", "img1.png", "missing.png", "", "sub/../img0.png", "a.dcm", "1", "-1",
                     "0", "1.0", "1e30", "nan", "inf", "x", "train", "val", "test", "P1", " ", '"', ",",
                     "\x00", "a" * 300]),
    st.text(max_size=12),
)


@st.composite
def manifests(draw):
    header = draw(st.one_of(
        st.just(["patient_id", "path", "label", "split"]),
        st.permutations(["patient_id", "path", "label", "split"]),
        st.lists(st.sampled_from(["patient_id", "path", "label", "split", "extra", ""]), max_size=5),
    ))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(header) + 1), max_size=6))
    quote = lambda c: '"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',"\n\r') else c  # noqa: E731
    text = "\n".join(",".join(quote(c) for c in r) for r in [header, *rows])
    if draw(st.booleans()):
        text = draw(mutated([text.encode()])).decode("utf-8", "replace")
    return text


@pytest.fixture(scope="module")
def manifest_dir(work):
    PIL = pytest.importorskip("PIL.Image")
    d = work / "manifest"
    d.mkdir()
    rng = np.random.default_rng(2)
    PIL.fromarray(rng.integers(0, 255, (10, 8)).astype(np.uint8)).save(d / "img0.png")
    PIL.fromarray(np.full((6, 6), 7, np.uint8)).save(d / "img1.png")  # constant: min-max gives 0
    (d / "a.dcm").write_bytes(b"not a dicom file")
    return d


@FUZZ
@given(text=manifests(), size=st.sampled_from([None, 8, (6, 9)]))
def test_fuzz_manifest(manifest_dir, text, size):
    p = manifest_dir / "manifest.csv"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    iset = _outcome(R.load_dataset, p, size=size)
    if isinstance(iset, R.ImageSet):
        for s in iset.splits:
            x, y, ids = iset.split(s)
            assert x.ndim == 4 and len(x) == len(y) == len(ids) and x.dtype == np.float32


# --------------------------------------------------------------------------- MedMNIST .npz

ARRAYS = st.one_of(
    st.builds(lambda n, h, w, c, dt: np.zeros((n, h, w) if c == 0 else (n, h, w, c), dtype=dt),
              st.integers(0, 4), st.integers(0, 6), st.integers(0, 6), st.sampled_from([0, 1, 3]),
              st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int64, bool])),
    st.builds(lambda v, n: np.full(n, v), st.sampled_from([0, 1, -1, -5, 2**40, 0.5, np.nan, np.inf]),
              st.integers(0, 5)),
    st.builds(lambda n: np.array(["a"] * n), st.integers(0, 4)),
    st.builds(lambda n: np.zeros((n, 1)), st.integers(0, 4)),
    st.builds(lambda n: np.zeros((n, 2)), st.integers(0, 4)),
    st.just(np.float64(3.0)),
)
KEYS = st.sampled_from(["train_images", "train_labels", "val_images", "val_labels", "test_images",
                        "test_labels", "images", "labels"])


def _npz_seed() -> bytes:
    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    np.savez(buf, train_images=rng.integers(0, 255, (4, 5, 5), dtype=np.uint8),
             train_labels=np.array([[0], [1], [0], [1]]), val_images=np.zeros((2, 5, 5), np.uint8),
             val_labels=np.array([0, 1]))
    return buf.getvalue()


def _npz_compressed_seed() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, train_images=np.ones((3, 4, 4), np.uint8), train_labels=np.array([0, 1, 1]))
    return buf.getvalue()


@FUZZ
@given(arrays=st.dictionaries(KEYS, ARRAYS, max_size=6), size=st.sampled_from([None, 7]))
def test_fuzz_npz_arrays(work, arrays, size):
    p = work / "arrays.npz"
    with open(p, "wb") as fh:
        np.savez(fh, **arrays)
    iset = _outcome(R.load_dataset, p, size=size)
    if isinstance(iset, R.ImageSet):
        for s in iset.splits:
            x, y, _ = iset.split(s)
            assert x.ndim == 4 and np.isfinite(x).all() and len(x) == len(y)


@FUZZ
@given(data=mutated([_npz_seed(), _npz_compressed_seed()]))
def test_fuzz_npz_bytes(work, data):
    p = work / "bytes.npz"
    p.write_bytes(data)
    _outcome(R.read_npz, p)
