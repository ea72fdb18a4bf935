import pandas as pd
import pytest

from pmed.errors import SchemaError, ValidationError
from pmed.schema import ColumnSpec, TableSchema


def schema():
    return TableSchema.from_dict({
        "id": "pid",
        "columns": {
            "age": {"type": "float", "unit": "years", "min": 0, "max": 120},
            "bmi": {"type": "float", "min": 10, "max": 80},
            "sex": {"type": "category", "categories": ["F", "M"]},
            "n_visits": "int",
            "smoker": "bool",
        },
    })


def frame(**over):
    d = {"pid": ["a", "b", "c"], "age": ["50", "61.5", "70"], "bmi": ["22", "31", "25"],
         "sex": ["F", "M", "F"], "n_visits": ["1", "0", "3"], "smoker": ["yes", "no", "1"]}
    d.update(over)
    return pd.DataFrame(d)


def test_validate_types_and_index():
    out = schema().validate(frame(), source="x.csv")
    assert list(out.index) == ["a", "b", "c"]
    assert out["age"].tolist() == [50.0, 61.5, 70.0]
    assert isinstance(out["sex"].dtype, pd.CategoricalDtype)
    assert list(out["sex"].cat.categories) == ["F", "M"]
    assert out["n_visits"].dtype == "Int64"
    assert out["smoker"].tolist() == [True, False, True]


@pytest.mark.parametrize(
    "over, needle",
    [
        ({"age": ["-3", "40", "50"]}, "impossible value -3 below"),
        ({"bmi": ["22", "900", "25"]}, "impossible value 900 above"),
        ({"sex": ["F", "X", "F"]}, "unknown categories 'X' at lines 3"),
        ({"age": ["50", "old", "70"]}, "expected a number, found 'old' at lines 3"),
        ({"pid": ["a", "a", "c"]}, "1 patient ID repeated, at lines 2, 3"),
        ({"pid": ["a", None, "c"]}, "missing patient ID at lines 3"),
        ({"n_visits": ["1", "0.5", "2"]}, "expected whole numbers"),
        ({"smoker": ["yes", "maybe", "no"]}, "expected true/false"),
    ],
)
def test_each_problem_is_named_with_file_column_and_line(over, needle):
    with pytest.raises(ValidationError) as e:
        schema().validate(frame(**over), source="cohort.csv")
    msg = str(e.value)
    assert msg.startswith("cohort.csv")
    assert needle in msg
    assert "fix:" in msg


def test_all_problems_reported_together():
    with pytest.raises(ValidationError) as e:
        schema().validate(frame(age=["-1", "40", "50"], sex=["F", "Q", "M"]))
    assert len(e.value.problems) == 2


def test_missing_declared_column_and_strict_extra():
    s = schema()
    with pytest.raises(ValidationError, match="'bmi' is declared in the schema but missing"):
        s.validate(frame().drop(columns=["bmi"]))
    s.strict = True
    with pytest.raises(ValidationError, match="not declared in the .strict. schema: extra"):
        s.validate(frame().assign(extra=1))


def test_missing_id_column():
    with pytest.raises(ValidationError, match="ID column 'pid' not found"):
        schema().validate(frame().rename(columns={"pid": "id"}))


def test_bad_schema_is_refused_with_key():
    with pytest.raises(SchemaError, match="unknown column type 'number'"):
        TableSchema.from_dict({"id": "p", "columns": {"x": {"type": "number"}}})
    with pytest.raises(SchemaError, match="needs its allowed 'categories'"):
        ColumnSpec(type="category")
    with pytest.raises(SchemaError) as e:
        TableSchema.from_dict({"id": "p", "columns": {"x": {"type": "float", "min": 5, "max": 1}}})
    assert "columns.x" in str(e.value)


def test_schema_dict_round_trip():
    s = schema()
    assert TableSchema.from_dict(s.to_dict()).columns == s.columns


def test_infer():
    df = pd.DataFrame({"pid": ["a", "b"], "x": [1.5, 2.0], "k": [1, 2], "c": ["u", "v"]})
    s = TableSchema.infer(df, id="pid")
    assert s.columns["x"].type == "float"
    assert s.columns["k"].type == "int"
    assert s.columns["c"].categories == ("u", "v")


def test_column_code_round_trips():
    # a coded column (FHIR input) keeps its code through to_dict/from_dict, as a bundle's
    # manifest stores its input_schema
    d = {"id": "pid", "columns": {
        "bmi": {"type": "float", "unit": "kg/m2", "code": "http://loinc.org|39156-5"},
        "sex": {"type": "category", "categories": ["F", "M"]},
    }}
    s = TableSchema.from_dict(d)
    assert s.columns["bmi"].code == "http://loinc.org|39156-5"
    assert s.columns["sex"].code is None
    out = s.to_dict()
    assert out["columns"]["bmi"]["code"] == "http://loinc.org|39156-5"
    assert "code" not in out["columns"]["sex"]
    assert TableSchema.from_dict(out).columns == s.columns
    with pytest.raises(SchemaError, match="system\\|code") as e:
        TableSchema.from_dict({"columns": {"bmi": {"type": "float", "code": "39156-5"}}})
    assert e.value.where == "columns.bmi"
