"""The one exception hierarchy: classes, exit codes and the optional-dependency error."""

from __future__ import annotations

import pytest

from pmed.errors import (
    InputError,
    MissingDependencyError,
    NotFoundError,
    OptionError,
    PmedError,
    PmedWarning,
    require,
)


def test_missing_dependency_names_the_extra():
    with pytest.raises(MissingDependencyError) as e:
        require("pmed_no_such_module_xyz", extra="imaging", feature="reading DICOM")
    err = e.value
    assert isinstance(err, PmedError) and isinstance(err, ImportError)
    assert err.exit_code == 9 and err.extra == "imaging"
    assert 'pip install "pmed[imaging]"' in str(err) and "reading DICOM" in str(err)


def test_missing_dependency_outside_every_extra():
    with pytest.raises(MissingDependencyError, match="pip install pmed_no_such_module_xyz"):
        require("pmed_no_such_module_xyz", extra=None)


def test_require_returns_the_module():
    import json

    assert require("json", extra="dev") is json


def test_option_and_not_found_errors_are_builtin_too():
    assert issubclass(OptionError, ValueError) and OptionError("x").exit_code == 2
    assert issubclass(NotFoundError, KeyError) and issubclass(NotFoundError, OptionError)
    assert str(NotFoundError("no such patient", fix="check the ID")) == (
        "no such patient\n  fix: check the ID")  # not KeyError's quoted repr
    assert issubclass(PmedWarning, UserWarning)


def test_message_names_file_place_and_fix():
    e = InputError("bad value", file="a.csv", where="line 3, column 'age'", fix="use a number")
    assert str(e) == "a.csv: line 3, column 'age': bad value\n  fix: use a number"


def test_cli_maps_a_missing_dependency_to_exit_9(monkeypatch, capsys):
    import pmed.cli as cli

    def boom(*a, **k):
        require("pmed_no_such_module_xyz", extra="omics")

    monkeypatch.setattr("pmed.io.read_table", boom)
    code = cli.main(["validate", "whatever.csv"])
    assert code == 9
    err = capsys.readouterr().err
    assert "pmed[omics]" in err and "Traceback" not in err
