"""The contract every domain package keeps: ``run_<domain>(...) -> <Domain>Result``.

A domain result is a dataclass deriving from :class:`DomainResult`. It offers

* :meth:`~DomainResult.to_block` — the patient-indexed feature table for the Cohort
  (``cohort.add_block(name, result.to_block())``);
* :meth:`~DomainResult.summary` — a small JSON-ready dict of what was found;
* :meth:`~DomainResult.write` — every output file into a folder, plus ``provenance.json``
  (domain, inputs with SHA-256, options, library versions, pmed's commit).

``provenance.json`` also tells :func:`pmed.cohort.read_block` which domain wrote a folder, so a
study can name any domain's output folder (or a file in it) as a block.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

from pmed.cohort import Block

__all__ = ["DomainResult", "make_provenance", "file_sha256", "pmed_commit", "PROVENANCE_FILE", "block_source"]

PROVENANCE_FILE = "provenance.json"

# Always reported; a domain adds the libraries it used (``DomainResult.libraries``).
_CORE_LIBRARIES = ("pmed", "numpy", "pandas", "scipy", "scikit-learn")


def file_sha256(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (streamed), or of a folder's files in sorted order."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def pmed_commit() -> str | None:
    """The git commit of the pmed source tree in use, or ``None`` for an installed wheel."""
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                           capture_output=True, text=True, timeout=5, check=False)
    return commit + ("+dirty" if dirty.stdout.strip() else "")


@lru_cache(maxsize=256)
def _version(lib: str) -> str | None:
    try:
        return version(lib)
    except PackageNotFoundError:
        return None


def _versions(libraries: Iterable[str]) -> dict[str, str | None]:
    return {lib: _version(lib) for lib in dict.fromkeys([*_CORE_LIBRARIES, *libraries])}


def make_provenance(
    domain: str,
    *,
    inputs: Mapping[str, str | Path | Iterable[str | Path] | None] | None = None,
    options: Mapping[str, Any] | None = None,
    libraries: Iterable[str] = (),
    hash_inputs: bool = True,
) -> dict[str, Any]:
    """What ``provenance.json`` holds: enough to say later exactly how an output was made.

    Parameters
    ----------
    domain
        The domain that ran (``"prs"``, ``"pgx"``, ``"imaging"``, ``"omics"``, ``"timeseries"``…).
    inputs
        Role → path (or several): each file is listed with its size and SHA-256.
    options
        The options of the run (JSON-ready values).
    libraries
        Distributions whose versions matter beyond the core (``"pgenlib"``, ``"torch"`` …).
    hash_inputs
        Skip the hashes (sizes only) for inputs too large to read twice.
    """
    listed = []
    for role, paths in (inputs or {}).items():
        if paths is None:
            continue
        many = paths if isinstance(paths, (list, tuple)) else [paths]
        for p in many:
            p = Path(p)
            entry: dict[str, Any] = {"role": role, "path": str(p)}
            if p.exists():
                entry["bytes"] = (sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                                  if p.is_dir() else p.stat().st_size)
                if hash_inputs:
                    entry["sha256"] = file_sha256(p)
            listed.append(entry)
    return {
        "domain": domain,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "inputs": listed,
        "options": dict(options or {}),
        "versions": _versions(libraries),
        "commit": pmed_commit(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "n_cpu": os.cpu_count(),
    }


@dataclass
class DomainResult:
    """Base of every ``run_<domain>`` result.

    Subclasses set :attr:`domain` (and :attr:`block_name`, the Cohort block's usual name),
    implement :meth:`to_block`, :meth:`summary` and :meth:`_write_files`, and fill
    :attr:`provenance` with :func:`make_provenance` when they are made.
    """

    domain: ClassVar[str] = ""
    block_name: ClassVar[str] = ""

    provenance: dict[str, Any] = field(default_factory=dict, kw_only=True)

    # -- to be provided by each domain ---------------------------------------------------
    def to_block(self) -> Block:
        """The patient-indexed feature table, with this run's provenance."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """A small JSON-ready dict of what was found (counts, key metrics)."""
        raise NotImplementedError

    def _write_files(self, out: Path) -> dict[str, Path]:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------
    def _owns(self, folder: Path) -> bool:
        """Whether a non-empty ``folder`` is an earlier output of this domain, which ``write`` may
        replace whole (its provenance.json says so; a domain may also know its own files)."""
        return _written_by(folder, self.domain)

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write every output into the folder ``out``, ``provenance.json`` last.

        The folder is staged and swapped in whole (:func:`pmed.io.output_folder`): ``out`` must be
        absent, empty or an earlier output of the same domain (its ``provenance.json`` says so),
        no input may lie inside it, and a failed or killed write leaves the previous output.

        Returns
        -------
        dict
            Output name → path, ``"provenance"`` included.
        """
        from pmed.io import output_folder, write_text_atomic
        from pmed.io.jsonio import to_json

        out = Path(out)
        inputs = [e["path"] for e in self.provenance.get("inputs", []) if e.get("path")]
        with output_folder(out, owned=self._owns, inputs=inputs,
                           what=f"{self.domain} output") as work:
            files = dict(self._write_files(work))
            prov = {"domain": self.domain, **self.provenance}
            prov["summary"] = self.summary()
            prov["outputs"] = sorted(str(Path(p).relative_to(work)) if Path(p).is_relative_to(work)
                                     else str(p) for p in files.values())
            files["provenance"] = write_text_atomic(work / PROVENANCE_FILE, to_json(prov))
        return {k: out / Path(p).relative_to(work) if Path(p).is_relative_to(work) else Path(p)
                for k, p in files.items()}


def _written_by(folder: Path, domain: str) -> bool:
    """Whether ``folder`` holds an earlier output of ``domain`` (its provenance.json says so)."""
    import json

    try:
        return json.loads((folder / PROVENANCE_FILE).read_text()).get("domain") == domain
    except (OSError, ValueError, AttributeError):
        return False


def block_source(path: str | Path, name: str) -> tuple[Path, dict[str, Any]] | None:
    """The block file of a domain's output folder, and the folder's provenance.

    ``path`` is the folder (its file ``name``) or that file itself; anything else gives ``None``
    (the caller then reads it as a plain table). The provenance is ``{}`` when the folder has
    none, and its list of outputs is left out (the block is one of them). An unreadable
    ``provenance.json`` is a warning, not an error: the block is read without it.
    """
    import json
    import warnings

    from pmed.errors import PmedWarning

    path = Path(path)
    file = path / name if path.is_dir() else path
    if file.name != name or not file.is_file():
        return None
    prov: dict[str, Any] = {}
    prov_file = file.parent / PROVENANCE_FILE
    if prov_file.is_file():
        try:
            loaded = json.loads(prov_file.read_text(encoding="utf-8"))
            prov = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError) as e:
            warnings.warn(f"{prov_file}: unreadable provenance ({type(e).__name__}); the block is read "
                          "without it", PmedWarning, stacklevel=3)
    prov.pop("outputs", None)
    return file, prov
