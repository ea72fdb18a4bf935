"""The locked install: requirements/*.txt agree with pyproject.toml and with the Makefile's venv.

The version checks run only in the venv that `make test` installed from the current lock (its
stamp holds the lock's hash); elsewhere they skip with the reason.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
KEY_PACKAGES = ("typer", "click", "scikit-learn", "numpy", "pandas", "lightgbm", "torch")


def _lock_module():
    # requirements/ is no package: load its script by path
    spec = importlib.util.spec_from_file_location("pmed_lock", REQUIREMENTS / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock = _lock_module()


@pytest.mark.parametrize("name", sorted(lock.SETS))
def test_lock_covers_pyproject(name: str) -> None:
    """Every distribution pyproject.toml asks for in a set is pinned (else: run `make lock`)."""
    pins = lock.read_lock(lock.lock_path(name))
    missing = lock.required_names(lock.SETS[name]) - set(pins)
    assert not missing, f"requirements/{name}.txt lacks {sorted(missing)}: run `make lock`"


def test_locks_agree_and_hold_no_cuda_build() -> None:
    dev = lock.read_lock(lock.lock_path("dev"))
    demo = lock.read_lock(lock.lock_path("demo"))
    # the demo set is resolved under the dev lock: same packages at the same versions
    assert set(demo) <= set(dev)
    assert {k: dev[k][1] for k in demo} == {k: v[1] for k, v in demo.items()}
    for pins in (dev, demo):
        assert not [k for k in pins if lock.FORBIDDEN.match(k)]
        assert pins["torch"][1].split("+")[0] == "2.13.0"
    assert {k: v[1] for k, v in lock.read_lock(REQUIREMENTS / "pins.in").items()} == {
        "torch": "2.13.0"
    }


def test_demo_lock_holds_what_the_demo_runs() -> None:
    """``make demo`` installs only the demo lock, so every package a part of the demo imports must be
    in it (the treatment section's EconML learners once were not, and the demo failed on a fresh clone)."""
    demo = lock.read_lock(lock.lock_path("demo"))
    needs = {"econml": "treatment effects", "cyvcf2": "VCF genotypes", "torch": "the lesion CNN",
             "monai": "the lesion CNN", "scanpy": "single-cell", "lifelines": "survival", "scikit-survival":
             "survival", "fastapi": "serving", "uvicorn": "serving", "sqlalchemy": "serving", "alembic": "serving",
             "diffprivlib": "the differentially private model"}
    missing = {k: v for k, v in needs.items() if lock.normalize(k) not in demo}
    assert not missing, f"requirements/demo.txt lacks {missing}: add the extra to SETS['demo'] and run `make lock`"


def test_required_names_follows_self_references(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "pmed"\ndependencies = ["numpy>=1.26"]\n'
        "[project.optional-dependencies]\n"
        "a = [\"Foo_Bar[x]>=1 ; python_version >= '3.11'\"]\n"
        'b = ["pmed[a]", "baz"]\nc = ["qux"]\n'
    )
    assert lock.required_names(("b",), pyproject) == {"numpy", "foo-bar", "baz"}


def _locked_venv() -> str | None:
    """Why the running interpreter is not the Makefile's venv installed from the current lock."""
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        return f"not running in the Makefile's venv ({venv})"
    stamp = venv / ".installed-dev"
    digest = hashlib.sha256(lock.lock_path("dev").read_bytes()).hexdigest()
    if not stamp.exists() or not stamp.read_text().startswith(f"sha256:{digest}"):
        return "the venv was not installed from the current requirements/dev.txt (run `make test`)"
    return None


@pytest.mark.skipif(_locked_venv() is not None, reason=str(_locked_venv()))
def test_installed_versions_equal_the_lock() -> None:
    pins = lock.read_lock(lock.lock_path("dev"))
    for name in KEY_PACKAGES:
        key = lock.normalize(name)
        if key in pins:  # click comes with typer only while typer needs it
            assert metadata.version(name) == pins[key][1], name
    installed = {lock.normalize(d.metadata["Name"]) for d in metadata.distributions()}
    assert not [k for k in installed if lock.FORBIDDEN.match(k)], "a CUDA build is installed"
