"""One exception hierarchy for everything pmed refuses.

Every error says *where* (file, line, column, rows, key) and *how to fix it*. The CLI maps
each class to an exit code (:attr:`PmedError.exit_code`) and prints the message without a
stack trace; the service (later) maps them to 4xx responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

__all__ = [
    "PmedError",
    "InputError",
    "SchemaError",
    "ValidationError",
    "IDMismatchError",
    "StudyError",
    "BundleError",
    "DataNotFoundError",
    "OptionError",
    "NotFoundError",
    "MissingDependencyError",
    "PmedWarning",
    "require",
    "format_rows",
    "shorten",
]


def format_rows(rows: Sequence[int], limit: int = 8) -> str:
    """Render a list of 1-based line numbers, shortened when long."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    if len(rows) > limit:
        shown += f", … ({len(rows)} in all)"
    return shown


def shorten(value: object, limit: int = 40) -> str:
    """A data value for a message: its ``repr``, cut to ``limit`` characters with the length said.

    A cell of a user's file can be of any length (a 10,000-character value pasted into a
    category column); echoed whole it buries the message. Short values come back as ``repr``
    gives them, so ``'M '`` still shows its trailing space.

    Parameters
    ----------
    value
        The value (``str(value)`` is shown).
    limit
        Most characters of the value shown.

    Returns
    -------
    str
        ``'abc'``, or ``'XXXX…' (10000 characters)`` for a long value.
    """
    text = str(value)
    if len(text) <= limit:
        return repr(value) if isinstance(value, str) else repr(text) if not _plain(value) else text
    return f"{text[:limit] + '…'!r} ({len(text)} characters)"


def _plain(value: object) -> bool:
    """Numbers and booleans print as themselves; everything else as a quoted string."""
    import numbers

    return isinstance(value, (numbers.Number, bool))


class PmedError(Exception):
    """Base class of every error pmed raises on purpose.

    Parameters
    ----------
    message
        What is wrong, in one sentence.
    file
        The file the problem is in, if any.
    where
        A location inside that file: ``"column 'age', lines 4, 9"`` or ``"key models[1].type"``.
    fix
        What the user should do about it.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        file: str | PathLike | None = None,
        where: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.where = where
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}")
        if self.where:
            parts.append(self.where)
        head = ": ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class InputError(PmedError):
    """A file cannot be read or parsed (missing, wrong format, bad encoding)."""

    exit_code = 2


class SchemaError(InputError):
    """The declared schema itself is malformed (unknown type, bad range)."""

    exit_code = 3


class ValidationError(InputError):
    """Data do not satisfy their schema. ``problems`` lists every problem found, not only the first."""

    exit_code = 4

    def __init__(self, problems: Sequence[str], *, file=None, fix=None) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        # one problem is one line (the diagnosis a user reads first); several are listed under a count
        msg = self.problems[0] if n == 1 else f"{n} problems found:\n" + "\n".join(
            f"  - {p}" for p in self.problems
        )
        super().__init__(msg, file=file, fix=fix)


class IDMismatchError(ValidationError):
    """Patient IDs of two modalities (or of a table and its outcomes) do not match."""

    exit_code = 5


class StudyError(PmedError):
    """A study file is invalid: the message points at the offending key."""

    exit_code = 6


class BundleError(PmedError):
    """A model bundle is missing, tampered with, stale, or does not fit the data given."""

    exit_code = 7


class DataNotFoundError(InputError):
    """Reference data (for example ``../shared/data``) are not where they were looked for."""

    exit_code = 8


class OptionError(PmedError, ValueError):
    """An option (CLI flag or keyword argument) has a value outside its allowed range or set.

    Raised before any data is read, so a wrong choice costs nothing. It is also a
    :class:`ValueError`, as Python code calling the API expects of a bad argument.
    """

    exit_code = 2


class NotFoundError(OptionError, KeyError):
    """A patient, column or key that was asked for is not there (also a :class:`KeyError`)."""


class MissingDependencyError(PmedError, ImportError):
    """An optional dependency is not installed: the message names the extra that brings it.

    Also an :class:`ImportError`, so ``except ImportError`` keeps working around pmed calls.
    """

    exit_code = 9

    def __init__(self, package: str, *, extra: str | None, feature: str | None = None) -> None:
        self.package = package
        self.extra = extra
        what = f" for {feature}" if feature else ""
        super().__init__(
            f"the optional package {package!r} is needed{what} but is not installed",
            # packages outside every extra (rarely used alternatives) are installed by name
            fix=f'pip install "pmed[{extra}]"' if extra else f"pip install {package}",
        )


class PmedWarning(UserWarning):
    """Base class of every warning pmed emits (filter with ``warnings.simplefilter``)."""


def require(module: str, *, extra: str | None, package: str | None = None,
            feature: str | None = None):
    """Import an optional dependency or raise :class:`MissingDependencyError` naming its extra.

    Parameters
    ----------
    module
        Module to import, e.g. ``"torch"`` or ``"cyvcf2"``.
    extra
        The pmed extra that installs it (``"imaging"``, ``"genomics"`` …), or ``None`` for a
        package that no extra brings (the message then says ``pip install <package>``).
    package
        Distribution name when it differs from the module (``scikit-misc`` for ``skmisc``).
    feature
        What needs it, for the message.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name is not None and e.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but one of *its* imports failed: show that
        raise MissingDependencyError(package or module.split(".")[0], extra=extra,
                                     feature=feature) from None
