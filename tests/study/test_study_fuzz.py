"""Fuzzed study files, predictions tables and patient tables: a result or a pmed error, nothing else.

Each example starts from a valid file and mutates it (bytes flipped, lines dropped or repeated,
keys and values replaced, truncation, odd encodings); the readers must answer with a parsed
object or a :class:`pmed.errors.PmedError` — never another exception, a hang or a crash.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SCHEMA_YAML, make_clinical
from pmed.errors import PmedError

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

STUDY = """\
name: fuzz
data:
  patients: patients.csv
  schema: schema.yaml
  outcomes: [sbp]
target: {column: event, task: binary}
features:
  exclude: [bmi]
models:
  - family: linear
  - family: lightgbm
    params: {n_estimators: 40}
evaluation: {folds: 4, repeats: 1, bootstrap: 50, select_by: auroc}
seed: 0
"""

_TOKENS = ["", "-", ":", "[", "]", "{", "}", "null", "~", "1e400", "-1", "0", "nan", "yes",
           "family: nonsense", "task: survival", "folds: 1", "  - ", "\t", "é", "\x00", "&a", "*a",
           "!!python/object:os.system", "'", '"']


@st.composite
def mutated_text(draw, base: str):
    lines = base.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "dup", "replace", "insert", "truncate", "swap"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "replace":
            line = lines[i]
            j = draw(st.integers(0, len(line)))
            lines[i] = line[:j] + draw(st.sampled_from(_TOKENS)) + line[j + draw(st.integers(0, 5)):]
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(_TOKENS)) + draw(st.text(max_size=12)))
        elif op == "truncate":
            lines = lines[:i]
        else:
            k = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[k] = lines[k], lines[i]
    return "\n".join(lines) + "\n"


def _encode(draw, text: str) -> bytes:
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    data = text.encode(enc, errors="replace")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@given(data=st.data())
@SETTINGS
def test_study_file(tmp_path_factory, data):
    from pmed.study import load_study

    d = tmp_path_factory.mktemp("study")
    (d / "study.yaml").write_bytes(_encode(data.draw, data.draw(mutated_text(STUDY))))
    try:
        study = load_study(d / "study.yaml")
    except PmedError:
        return
    assert study.models and study.target.column


@given(data=st.data())
@SETTINGS
def test_predictions_table(tmp_path_factory, data):
    from pmed.evaluate import evaluate_predictions, read_predictions

    d = tmp_path_factory.mktemp("pred")
    clinical = make_clinical(60, seed=3)
    df = pd.DataFrame({"patient_id": clinical["patient_id"], "y": clinical["event"],
                       "p": (clinical["age"] / 100).clip(0.01, 0.99), "sex": clinical["sex"]})
    text = data.draw(mutated_text(df.to_csv(index=False)))
    suffix = data.draw(st.sampled_from([".csv", ".tsv", ".txt"]))
    (d / f"pred{suffix}").write_bytes(_encode(data.draw, text))
    try:
        table = read_predictions(d / f"pred{suffix}")
        ev, _ = evaluate_predictions(table, outcome="y", score="p", groups=["sex"], n_boot=20,
                                     min_group_size=5, source=str(d / f"pred{suffix}"))
    except PmedError:
        return
    assert 0 <= ev["models"]["model"]["metrics"]["auroc"]["estimate"] <= 1


@given(data=st.data())
@SETTINGS
def test_patient_table_with_schema(tmp_path_factory, data):
    from pmed.io import read_table

    d = tmp_path_factory.mktemp("patients")
    text = data.draw(mutated_text(make_clinical(30, seed=4).to_csv(index=False)))
    (d / "patients.csv").write_bytes(_encode(data.draw, text))
    schema = data.draw(mutated_text(SCHEMA_YAML)) if data.draw(st.booleans()) else SCHEMA_YAML
    (d / "schema.yaml").write_text(schema, encoding="utf-8", errors="replace")
    try:
        df = read_table(d / "patients.csv", schema=d / "schema.yaml")
    except PmedError:
        return
    assert df.index.is_unique
