"""Headless Chromium: HTML → PDF and screenshots (Debian package ``chromium``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pmed.errors import PmedError
from pmed.io._atomic import atomic_path

__all__ = ["find_chromium", "html_to_pdf", "screenshot", "CHROMIUM_FLAGS"]

# No network and no background services: the reports are self-contained, and on a closed
# network Chromium's background connections only produce errors.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--hide-scrollbars", "--allow-file-access-from-files",
)


def find_chromium() -> str:
    """Path of a Chromium/Chrome executable (``$PMED_CHROMIUM`` first)."""
    for cand in (os.environ.get("PMED_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if cand and (path := shutil.which(cand)):
            return path
    raise PmedError("no Chromium found for PDF export and screenshots",
                    fix="install it (Debian: apt-get install chromium) or set PMED_CHROMIUM")


def _run(args: list[str], *, timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="pmed-chromium-") as profile:
        cmd = [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise PmedError(f"Chromium failed (exit {r.returncode}): {r.stderr.strip()[-500:]}")
    return r


def html_to_pdf(html: str | Path, pdf: str | Path) -> Path:
    """Print an HTML file to PDF (A4, backgrounds on), atomically."""
    html = Path(html).resolve()
    with atomic_path(pdf) as tmp:
        _run(["--no-pdf-header-footer", "--print-to-pdf-no-header", f"--print-to-pdf={tmp}",
              html.as_uri()])
        if tmp.stat().st_size == 0:
            raise PmedError("Chromium wrote an empty PDF", file=html)
    return Path(pdf)


def screenshot(html: str | Path, png: str | Path, *, width: int = 1200, height: int = 1600) -> tuple[Path, str]:
    """Screenshot an HTML file; returns the PNG path and Chromium's log (console messages).

    Console messages appear in the log as ``CONSOLE`` lines (``--enable-logging=stderr``), so a
    caller can check a page for script errors.
    """
    html = Path(html).resolve()
    with atomic_path(png) as tmp:
        r = _run(["--enable-logging=stderr", "--v=0", f"--window-size={width},{height}",
                  f"--screenshot={tmp}", html.as_uri()])
    return Path(png), r.stderr
