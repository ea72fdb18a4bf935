import pytest

from pmed.errors import StudyError
from pmed.study import load_study

GOOD = """\
name: s
data:
  patients: p.csv
target: {column: y, task: binary}
models:
  - family: linear
  - family: lightgbm
"""


def write(tmp_path, text):
    p = tmp_path / "study.yaml"
    p.write_text(text)
    return p


def test_good_study_defaults(tmp_path):
    s = load_study(write(tmp_path, GOOD))
    assert s.evaluation.select_by == "auroc" and s.evaluation.folds == 5
    assert s.path("p.csv") == tmp_path / "p.csv"


@pytest.mark.parametrize(
    "text, key, line, needle",
    [
        (GOOD.replace("family: lightgbm", "family: xgboost"), "models[1].family", 7, "unknown model family 'xgboost'"),
        (GOOD.replace("task: binary", "task: ordinal"), "target.task", 4, "'binary', 'continuous' or 'survival'"),
        (GOOD.replace("name: s\n", ""), "name", None, "required key 'name' is missing"),
        (GOOD + "evalution: {folds: 3}\n", "evalution", 8, "unknown key 'evalution'"),
        (GOOD + "evaluation: {folds: 1}\n", "evaluation.folds", 8, "greater than or equal to 2"),
        (GOOD + "evaluation: {select_by: r2}\n", "(top level)", None, "not a binary metric"),
    ],
)
def test_errors_point_at_the_key_and_line(tmp_path, text, key, line, needle):
    with pytest.raises(StudyError) as e:
        load_study(write(tmp_path, text))
    msg = str(e.value)
    assert f"key {key}" in msg
    assert needle in msg
    if line:
        assert f"line {line}" in msg
    assert str(tmp_path / "study.yaml") in msg


def test_yaml_syntax_error_has_line(tmp_path):
    with pytest.raises(StudyError, match=r"line \d+, column \d+"):
        load_study(write(tmp_path, "name: s\ndata: [unclosed\n"))


def test_duplicate_model_names(tmp_path):
    with pytest.raises(StudyError, match="unique 'name'"):
        load_study(write(tmp_path, GOOD.replace("lightgbm", "linear")))
