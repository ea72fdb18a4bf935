"""pmed: validated, explained, fair and private models for personalized medicine.

The top level holds only the core (numpy, pandas, scipy, scikit-learn); each domain package
loads its heavier libraries when it is used.
"""

from importlib.metadata import PackageNotFoundError, version

from pmed.cohort import Block, Cohort
from pmed.errors import PmedError
from pmed.schema import ColumnSpec, TableSchema

try:
    __version__ = version("pmed")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["Cohort", "Block", "TableSchema", "ColumnSpec", "PmedError", "__version__"]
