import numpy as np
import pandas as pd
import pytest

from pmed.errors import InputError, ValidationError
from pmed.evaluate.predictions import check_predictions, read_predictions


def good(n=40):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"y": np.tile([0, 1], n // 2), "p": rng.uniform(0, 1, n),
                         "sex": np.tile(["F", "M", "M", "F"], n // 4)})


def test_good_file_passes_and_is_typed():
    out = check_predictions(good(), outcome="y", score="p", groups=["sex"])
    assert out["y"].dtype == int and out["p"].dtype == float


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d.assign(y=np.tile([0, 1, 2, 1], 10)), "outcome must be binary 0/1"),
        (lambda d: d.assign(y=1), "only one outcome class"),
        (lambda d: d.assign(p=d["p"].where(d.index != 3, 1.7)), "probabilities outside [0, 1] at lines 5"),
        (lambda d: d.assign(p=d["p"].where(d.index != 0, np.nan)), "missing or non-numeric scores at lines 2"),
        (lambda d: d.assign(y=d["y"].where(d.index != 1, np.nan)), "missing outcome at lines 3"),
        (lambda d: d.assign(sex="F"), "group column 'sex': a single level"),
        (lambda d: d.drop(columns=["p"]), "column 'p' not found"),
    ],
)
def test_bad_predictions_are_refused_clearly(mutate, needle):
    with pytest.raises(ValidationError) as e:
        check_predictions(mutate(good()), outcome="y", score="p", groups=["sex"], source="preds.csv")
    assert needle in str(e.value) and str(e.value).startswith("preds.csv")


def test_read_predictions(tmp_path):
    good().to_csv(tmp_path / "p.csv", index=False)
    assert len(read_predictions(tmp_path / "p.csv")) == 40
    with pytest.raises(InputError, match="not found"):
        read_predictions(tmp_path / "nope.csv")
