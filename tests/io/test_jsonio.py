import json
from pathlib import Path

import numpy as np

from pmed.io.jsonio import to_json


def test_strict_json_from_numpy_nan_and_paths():
    text = to_json({"a": np.float64("nan"), "b": np.int64(3), "c": (np.float32(1.5), np.inf),
                    "d": Path("x/y"), "e": np.array([1, 2]), 4: np.bool_(True)})
    assert json.loads(text) == {"a": None, "b": 3, "c": [1.5, None], "d": "x/y", "e": [1, 2], "4": True}
    assert text.endswith("\n") and "NaN" not in text
