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
