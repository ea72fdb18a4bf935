"""Where pmed finds the reference data kept outside the repository (the ``shared/`` folder).

Every developer and CI run has the reference data at ``../shared`` beside the project root; a
user can point elsewhere with the ``PMED_SHARED`` environment variable. Loaders call
:func:`shared_data_dir` and :func:`require_path` so that an absent file always fails the same
way: a :class:`~pmed.errors.DataNotFoundError` that names the path looked at and says how to
set ``PMED_SHARED``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pmed.errors import DataNotFoundError

__all__ = ["SHARED_ENV", "shared_data_dir", "shared_candidates", "require_path"]

#: Environment variable that overrides where the ``shared/`` reference folder is.
SHARED_ENV = "PMED_SHARED"


def _repo_root() -> Path:
    # src/pmed/datasets/_paths.py -> parents[3] is the checkout root in a src layout. For an
    # installed wheel this lands in site-packages' parent, where no shared/ exists: harmless.
    return Path(__file__).resolve().parents[3]


def shared_candidates() -> list[Path]:
    """The folders :func:`shared_data_dir` considers, in order of preference.

    Returns
    -------
    list of pathlib.Path
        ``$PMED_SHARED`` alone when it is set; otherwise ``<cwd>/../shared``,
        ``<repo root>/../shared`` and ``<repo root>/shared`` (a copy of the checkout may carry
        the folder inside it), without duplicates.
    """
    env = os.environ.get(SHARED_ENV, "").strip()
    if env:
        # An explicit choice is never second-guessed: if it is wrong the loader says so.
        return [Path(env).expanduser().resolve()]
    root = _repo_root()
    out: list[Path] = []
    for c in (Path.cwd() / ".." / "shared", root.parent / "shared", root / "shared"):
        c = c.resolve()
        if c not in out:
            out.append(c)
    return out


def shared_data_dir() -> Path:
    """The ``shared/`` reference-data folder (the one holding ``data/``).

    Looks at ``$PMED_SHARED`` when set; otherwise the first existing of ``<cwd>/../shared``,
    ``<repo root>/../shared`` and ``<repo root>/shared``, where the repo root is the checkout that
    holds the imported ``pmed`` sources.

    Returns
    -------
    pathlib.Path
        The folder found. When none exists, the first candidate is returned anyway, so that the
        loader's :class:`~pmed.errors.DataNotFoundError` names a concrete path.
    """
    candidates = shared_candidates()
    for c in candidates:
        # a folder without data/ is a stray directory named "shared", not the reference data
        if (c / "data").is_dir():
            return c
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def require_path(path: str | Path, *, what: str) -> Path:
    """Return ``path`` if it exists, else raise a :class:`~pmed.errors.DataNotFoundError`.

    Parameters
    ----------
    path
        File or folder that a loader needs.
    what
        What it is, for the message (``"GDSC v17 IC50 table"``).

    Raises
    ------
    DataNotFoundError
        Naming the path and how to point pmed at the reference data.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(
            f"{what} not found",
            file=path,
            fix=(
                f"set {SHARED_ENV} to the folder that holds the reference data "
                f"(e.g. export {SHARED_ENV}=/path/to/shared, the folder containing data/), "
                "or pass root= explicitly"
            ),
        )
    return path
