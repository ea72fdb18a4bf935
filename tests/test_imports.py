"""The core imports only numpy, pandas, scipy and scikit-learn."""

import subprocess
import sys

# (rich is absent from this list: scikit-learn >= 1.9 imports it itself when it is installed)
HEAVY = ("lightgbm", "matplotlib", "torch", "typer", "skops", "pydantic", "yaml")


def test_core_import_is_light():
    code = (
        "import sys, pmed, pmed.cohort, pmed.io, pmed.evaluate, pmed.schema, pmed.models;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api():
    import pmed

    assert set(pmed.__all__) >= {"Cohort", "TableSchema", "PmedError"}
    assert pmed.__version__


def test_test_module_names_are_unique():
    """pytest imports test modules by file name (no packages under tests/): two of one name in
    different folders stop the whole run at collection."""
    from collections import Counter
    from pathlib import Path

    names = Counter(p.name for p in Path(__file__).parent.rglob("*.py") if p.name != "__init__.py")
    assert [n for n, k in names.items() if k > 1] == []
