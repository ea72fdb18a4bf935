"""The locked install: resolve, install and verify the exact versions `make test` passed with.

Usage (the Makefile runs these with the venv's Python; only the standard library is used)::

    python requirements/lock.py refresh        # newest versions -> requirements/{dev,demo}.txt
    python requirements/lock.py install dev    # install .[dev] at the locked versions, exactly
    python requirements/lock.py install demo   # install the demo's extras at the locked versions
    python requirements/lock.py check dev      # compare the running environment with the lock

The locks are resolved by pip itself (``pip install --dry-run --report``) with the same index
configuration as the install (pip's config files and ``PIP_*`` variables), for the running
interpreter: CPython 3.11 on Linux x86-64 on this project's machines. ``requirements/pins.in``
holds the few versions kept by hand (torch's CPU build). The demo lock is resolved under the dev
lock, so a package that both sets need has the same version in both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

__all__ = ["SETS", "lock_path", "read_lock", "normalize", "required_names", "main"]

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "requirements"
PINS = HERE / "pins.in"

# Each locked set: the extras of pmed it installs. `make test` uses dev, `make demo` demo.
SETS: dict[str, tuple[str, ...]] = {
    "dev": ("dev",),
    "demo": ("genomics", "imaging", "omics", "survival", "effects", "serve", "privacy"),
}
# The dev lock is resolved first; the other sets are resolved under it.
ORDER = ("dev", "demo")
# Never part of a lock: pmed itself (installed editable) and the installer.
UNLOCKED = {"pmed", "pip"}
# The CUDA build of torch drags these in; pmed runs on the CPU build and must never pull them.
FORBIDDEN = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def normalize(name: str) -> str:
    """PEP 503 form of a distribution name (``PyYAML`` -> ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path(name: str) -> Path:
    """The lock file of set ``name`` (``requirements/<name>.txt``)."""
    return HERE / f"{name}.txt"


def read_lock(path: Path) -> dict[str, tuple[str, str]]:
    """``{normalized name: (name as written, version)}`` for every ``name==version`` line."""
    pins: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            sys.exit(f"{path}:{number}: expected `name==version`; run `make lock` to rewrite it")
        pins[normalize(name.strip())] = (name.strip(), version.strip())
    return pins


def required_names(extras: tuple[str, ...], pyproject: Path = ROOT / "pyproject.toml") -> set[str]:
    """Normalized names of the distributions pyproject.toml asks for with ``extras``.

    Self-references such as ``pmed[survival,genomics]`` are followed, so ``dev`` covers every
    extra it names.
    """
    project = tomllib.loads(pyproject.read_text())["project"]
    own = normalize(project["name"])
    optional = project.get("optional-dependencies", {})
    names: set[str] = set()
    seen: set[str] = set()

    def add(requirements: list[str]) -> None:
        for requirement in requirements:
            match = _NAME.match(requirement)
            if match is None:
                continue
            name = normalize(match.group(1))
            if name == own:
                for extra in (match.group(2) or "").split(","):
                    visit(extra.strip())
            else:
                names.add(name)

    def visit(extra: str) -> None:
        if extra and extra not in seen:
            seen.add(extra)
            add(optional.get(extra, []))

    add(project.get("dependencies", []))
    for extra in extras:
        visit(extra)
    return names


def _installed() -> dict[str, tuple[str, str]]:
    """``{normalized name: (name, version)}`` of the distributions of the running environment."""
    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:  # a half-removed distribution has no metadata; pip ignores those too
            found.setdefault(normalize(name), (name, dist.version))
    return found


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], cwd=ROOT, check=True)


def _resolve(extras: tuple[str, ...], constraints: list[Path]) -> list[tuple[str, str]]:
    """Resolve ``.[extras]`` to its newest versions with pip, as if into an empty environment."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)]
        for path in constraints:
            args += ["-c", str(path)]
        _pip(*args, "-e", f".[{','.join(extras)}]")
        installs = json.loads(report.read_text())["install"]
    resolved = [(item["metadata"]["name"], item["metadata"]["version"]) for item in installs]
    resolved = [(n, v) for n, v in resolved if normalize(n) not in UNLOCKED]
    bad = sorted(n for n, _ in resolved if FORBIDDEN.match(normalize(n)))
    if bad:
        sys.exit(
            f"the resolution for .[{','.join(extras)}] contains CUDA packages ({', '.join(bad)}): "
            "torch's CPU build was not chosen; check requirements/pins.in and pip's find-links"
        )
    return sorted(resolved, key=lambda item: normalize(item[0]))


def _header(name: str) -> str:
    extras = ",".join(SETS[name])
    return (
        f"# pmed[{extras}] at the versions `make {'test' if name == 'dev' else name}` installs.\n"
        "# Written by `make lock` (requirements/lock.py refresh); do not edit by hand.\n"
        f"# Resolved by pip {metadata.version('pip')} on {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}, "
        "holding requirements/pins.in.\n"
        f'# Installed with: pip install -c requirements/{name}.txt -e ".[{extras}]"\n'
    )


def refresh() -> int:
    """Re-resolve every set to the newest versions and rewrite the locks that changed."""
    constraints = [PINS]
    for name in ORDER:
        resolved = _resolve(SETS[name], constraints)
        path = lock_path(name)
        text = _header(name) + "".join(f"{n}=={v}\n" for n, v in resolved)
        old = read_lock(path) if path.exists() else {}
        new = {normalize(n): (n, v) for n, v in resolved}
        changes = [
            f"  {new[k][0]} {old[k][1] if k in old else '(new)'} -> {new[k][1]}"
            for k in sorted(new)
            if k not in old or old[k][1] != new[k][1]
        ] + [f"  {old[k][0]} {old[k][1]} -> (dropped)" for k in sorted(set(old) - set(new))]
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        print(f"{path.relative_to(ROOT)}: {len(resolved)} packages, {len(changes)} changed")
        for change in changes:
            print(change)
        # the later sets take the versions the dev set was resolved to
        constraints = [PINS, lock_path("dev")]
    return 0


def _compare(name: str, exact: bool) -> list[str]:
    pins = read_lock(lock_path(name))
    installed = _installed()
    problems = [
        f"{pins[k][0]}: locked {pins[k][1]}, installed {installed[k][1] if k in installed else 'none'}"
        for k in sorted(pins)
        if k not in installed or installed[k][1] != pins[k][1]
    ]
    if exact:
        extra = sorted(set(installed) - set(pins) - UNLOCKED)
        problems += [f"{installed[k][0]} {installed[k][1]}: installed, not locked" for k in extra]
    return problems


def check(name: str, exact: bool, stamp: Path | None = None) -> int:
    """Compare the running environment with lock ``name``; write ``stamp`` when they agree."""
    problems = _compare(name, exact)
    if problems:
        print(
            f"{sys.prefix} differs from requirements/{name}.txt in {len(problems)} package(s):",
            *problems[:30],
            *([f"... and {len(problems) - 30} more"] if len(problems) > 30 else []),
            "fix: `make clean test` reinstalls from the lock; `make lock` refreshes it",
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    if stamp is not None:
        digest = hashlib.sha256(lock_path(name).read_bytes()).hexdigest()
        stamp.write_text(f"sha256:{digest} requirements/{name}.txt\n")
    return 0


def install(name: str, stamp: Path | None = None) -> int:
    """Install pmed's ``name`` set at the locked versions, then verify the environment."""
    path = lock_path(name)
    pins = read_lock(path)
    missing = sorted(required_names(SETS[name]) - set(pins))
    if missing:
        print(
            f"pyproject.toml asks for {', '.join(missing)}, which requirements/{name}.txt does not "
            "list: run `make lock` to resolve the new requirements",
            file=sys.stderr,
        )
        return 1
    _pip("install", "--quiet", "-c", str(path), "-e", f".[{','.join(SETS[name])}]")
    exact = name == "dev"
    if exact:
        # the dev set holds every other set, so whatever it does not list is a leftover of an
        # older lock (a dropped dependency, a CUDA build of torch) and goes
        leftovers = [
            installed[0]
            for key, installed in _installed().items()
            if key not in pins and key not in UNLOCKED
        ]
        if leftovers:
            print(
                f"removing {len(leftovers)} package(s) the lock does not list: "
                + ", ".join(sorted(leftovers))
            )
            _pip("uninstall", "--quiet", "--yes", *leftovers)
    _pip("check")
    return check(name, exact, stamp)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``refresh``, ``install SET`` or ``check SET``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("refresh", help="resolve the newest versions and rewrite the locks")
    for command in ("install", "check"):
        p = sub.add_parser(command, help=f"{command} a locked set")
        p.add_argument("set", choices=sorted(SETS))
        p.add_argument("--stamp", type=Path, help="file to record the verified lock's hash in")
    check_parser = sub.choices["check"]
    check_parser.add_argument(
        "--exact",
        action="store_true",
        help="also fail on installed packages that the lock does not list",
    )
    args = parser.parse_args(argv)
    if args.command == "refresh":
        return refresh()
    if args.command == "install":
        return install(args.set, args.stamp)
    return check(args.set, args.exact, args.stamp)


if __name__ == "__main__":
    sys.exit(main())
