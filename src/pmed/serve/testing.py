"""A throwaway PostgreSQL server for pmed serve's tests and load benchmark (not used in service).

The service itself only takes a database URL; this module starts a private server so that the
tests and ``benchmarks/serve_load.py`` run against real PostgreSQL, as a deployment would.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["free_port", "throwaway_postgres"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_dir() -> Path | None:
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb")).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))  # Debian's postgresql package
    return Path(found[-1]).parent if found else None


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a PostgreSQL server (trust auth, 127.0.0.1, a free port, database ``pmed``); yield its URL.

    Its folder is a fresh one under the system's temporary folder (the server may run as
    ``postgres``, who cannot enter a folder private to the caller); server and folder are
    removed at the end, also when the start fails.

    Raises
    ------
    RuntimeError
        The binaries (``initdb``, ``pg_ctl``) are missing, or, as root, there is no
        ``postgres`` user to run the server as (``initdb`` refuses root), or the server did not
        start (the message carries its error output).
    """
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as") from None
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="pmed-pg-"))
    if as_user:
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    data, port = folder / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    try:
        try:
            run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "start", "-o",
                f"-k {folder} -p {port} -c listen_addresses=127.0.0.1")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"could not start a PostgreSQL server: {getattr(e, 'stderr', b'')!r}"[:300]) from None
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE pmed")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/pmed"
    finally:  # a server that failed to start is stopped (a no-op) and its folder removed all the same
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
