"""The harness of issue #16's standing bad-input suite (``tests/bad_inputs``).

Every case is one CLI call on a bad input, tagged with the class of the issue's table it
belongs to (``@bad_input("silent")``), and checked the same way by :func:`refused`:

* the exit code;
* one diagnosis line (pmed's ``error …`` or click's ``Error: …``) that matches what the problem
  is, followed at most by a ``fix:`` line (click adds its ``Usage:``/``Try`` lines);
* no traceback, no patient identifier or long value echoed (``secrets``, 300 characters a line);
* every input byte-for-byte unchanged;
* no file created or changed anywhere under the test folder except inside ``--out``.

``tests/bad_inputs/test_bad_classes.py`` fails when a class of the table has no case.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from pmed.cli import main

#: The classes of issue #16's table: tag → the table's words.
CLASSES = {
    "outside": "a write outside the output folder",
    "overwrite": "inputs overwritten",
    "mixed": "output folders that mix runs",
    "integrity": "integrity",
    "silent": "silent wrong answers",
    "options": "option values never checked",
    "broken": "broken files",
    "diagnosis": "misleading diagnoses",
    "identifiers": "identifiers in messages",
}


def bad_input(cls: str):
    """Tag a test with the class of bad input it covers (a key of :data:`CLASSES`)."""
    if cls not in CLASSES:
        raise ValueError(f"unknown bad-input class {cls!r}; one of {sorted(CLASSES)}")
    return pytest.mark.bad_input(cls)


def snapshot(root: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file under ``root`` (symbolic links not followed)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _inside(rel: str, outs: Iterable[Path], root: Path) -> bool:
    p = (root / rel).resolve()
    return any(p == o.resolve() or o.resolve() in p.parents for o in outs)


def run_cli(capsys, argv) -> tuple[int, str]:
    """Run ``pmed argv`` in-process; the exit code and everything it printed."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    c = capsys.readouterr()
    return rc, c.out + c.err


def diagnosis(text: str) -> list[str]:
    """The diagnosis lines of a failed command's output (click's usage lines left out)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith(("Usage:", "Try '"))]


def refused(capsys, root: Path, argv, *, code: int, says: str, out: Path | Iterable[Path] = (),
            secrets: Iterable[str] = ()) -> str:
    """Assert that ``pmed argv`` refuses a bad input the way issue #16 asks; return the message.

    Parameters
    ----------
    root
        The test's folder: every file under it is an input that must stay unchanged, and no file
        may appear under it except inside ``out``.
    code
        The expected exit code.
    says
        A regular expression (case-insensitive) the diagnosis line must match: the real cause.
    out
        The output folder(s) or file(s) the command may write into.
    secrets
        Values that must not appear in the output (patient IDs, long values).
    """
    outs = [out] if isinstance(out, Path) else list(out)
    before = snapshot(root)
    rc, text = run_cli(capsys, argv)
    assert "Traceback" not in text, text
    lines = diagnosis(text)
    assert rc == code, f"exit {rc}, expected {code}:\n{text}"
    assert lines, "no message at all"
    head, rest = lines[0], lines[1:]
    assert head.startswith(("error", "Error:")), text
    assert re.search(says, head, re.IGNORECASE), f"the message does not say {says!r}:\n{text}"
    assert all(ln.startswith("fix:") for ln in rest) and len(rest) <= 1, f"more than one line:\n{text}"
    assert all(len(ln) <= 400 for ln in lines), f"a line of {max(map(len, lines))} characters"
    for s in secrets:
        assert s not in text, f"{s!r} is in the message:\n{text}"
    after = snapshot(root)
    changed = [k for k in before if after.get(k) != before[k] and not _inside(k, outs, root)]
    assert not changed, f"inputs changed or removed: {changed}"
    new = [k for k in after if k not in before and not _inside(k, outs, root)]
    assert not new, f"files written outside --out: {new}"
    return head


def refused_run(capsys, root: Path, study: Path, *, code: int, says: str, secrets: Iterable[str] = ()) -> str:
    """:func:`refused` for ``pmed run STUDY --out ROOT/out``, which must also leave no ``out``."""
    out = root / "out"
    head = refused(capsys, root, ["run", study, "--out", out], code=code, says=says, out=out, secrets=secrets)
    assert not out.exists(), "a refused study wrote its output folder"
    return head
