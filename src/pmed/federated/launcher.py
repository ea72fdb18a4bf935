"""Start, drive and stop Flower's deployment engine: a SuperLink, SuperNodes, and ``flwr run``.

Each process is a real ``flower-superlink`` / ``flower-supernode`` started in its own process
group (they start children: SuperExec, then one ``flwr-serverapp``/``flwr-clientapp`` process per
run or message), so :meth:`Deployment.close` ends the whole tree — also on errors and Ctrl-C
(a ``try/finally`` and a SIGTERM handler) — and nothing is left running. Every wait has a
timeout and every failure says which process failed and shows the tail of its log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmed.errors import PmedError

__all__ = ["FederatedError", "Deployment", "free_port", "app_dir"]

APP_MODULE = "pmed_federated_app"


class FederatedError(PmedError):
    """A federated run cannot start, a process failed, or the run did not finish."""

    exit_code = 9


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise FederatedError(f"Flower's {name} command was not found",
                             fix="install Flower: pip install 'pmed[federated]'")
    return found


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + ln for ln in lines[-n:])


def app_dir(folder: Path, run_config: dict[str, Any]) -> Path:
    """Write the Flower App (``pyproject.toml`` + a module naming pmed's apps) with its run config."""
    import tomli_w

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{APP_MODULE}.py").write_text(
        '"""pmed\'s federated app: the code is pmed.federated.flower_app (pmed installed at each site)."""\n'
        "from pmed.federated.flower_app import client_app, server_app\n\n"
        '__all__ = ["client_app", "server_app"]\n')
    doc = {
        "build-system": {"requires": ["hatchling"], "build-backend": "hatchling.build"},
        "project": {"name": "pmed-federated", "version": "1.0.0", "description": "pmed federated training",
                    "license": "BSD-3-Clause", "dependencies": []},
        "tool": {"hatch": {"build": {"targets": {"wheel": {"packages": ["."]}}}},
                 "flwr": {"app": {"publisher": "pmed",
                                  "components": {"serverapp": f"{APP_MODULE}:server_app",
                                                 "clientapp": f"{APP_MODULE}:client_app"},
                                  "config": run_config}}},
    }
    (folder / "pyproject.toml").write_text(tomli_w.dumps(doc))
    return folder


@dataclass
class Deployment:
    """Flower processes on this machine (or only ``flwr run`` against a remote SuperLink)."""

    workdir: Path
    superlink: str | None = None  # HOST:PORT of an existing SuperLink; None: start one here
    startup_timeout: float = 60.0
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.home = self.workdir / "flwr_home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logdir = self.workdir / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "FLWR_HOME": str(self.home), "FLWR_TELEMETRY_ENABLED": "0",
                    "FLWR_DISABLE_UPDATE_CHECK": "1", "PYTHONUNBUFFERED": "1",
                    # SuperExec looks for new app processes to start every second by default
                    "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": os.environ.get("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.2")}
        self.env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + self.env.get("PATH", "")

    # -- processes -----------------------------------------------------------------------------
    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.logdir / f"{name}.log"
        self.logs[name] = log
        fh = open(log, "w")  # noqa: SIM115 - the child owns it until it exits
        try:
            p = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                 start_new_session=True, cwd=self.workdir)
        finally:
            fh.close()
        self.procs[name] = p
        return p

    def _check_alive(self, name: str) -> None:
        p = self.procs[name]
        if p.poll() is not None:
            raise FederatedError(f"Flower's {name} exited early (code {p.returncode}); its log ends:\n"
                                 f"{_tail(self.logs[name])}")

    def start_superlink(self) -> str:
        port = free_port()
        self._start("superlink", [_bin("flower-superlink"), "--insecure", "--host", "127.0.0.1",
                                  "--port", str(port), "--disable-runtime-dependency-installation"])
        address = f"127.0.0.1:{port}"
        t0 = time.monotonic()
        while True:
            self._check_alive("superlink")
            try:
                with urllib.request.urlopen(f"http://{address}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - t0 > self.startup_timeout:
                raise FederatedError(f"the SuperLink did not answer on {address} within "
                                     f"{self.startup_timeout:.0f} s; its log ends:\n{_tail(self.logs['superlink'])}")
            time.sleep(0.3)
        self.superlink = address
        return address

    def start_supernode(self, name: str, node_config: dict[str, Any]) -> None:
        if self.superlink is None:
            raise FederatedError("start the SuperLink first")
        cfg = " ".join(f"{k}={json.dumps(v)}" for k, v in node_config.items())
        self._start(name, [_bin("flower-supernode"), "--insecure", "--superlink", self.superlink,
                           "--host", "127.0.0.1", "--port", str(free_port()), "--node-config", cfg,
                           "--max-wait-time", str(int(self.startup_timeout))])

    def stop(self, name: str) -> None:
        """End one process and its children (its process group)."""
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # children that left the group's leader behind (SuperExec, app processes)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for name in [n for n in self.procs if n != "superlink"] + ["superlink"]:
            self.stop(name)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    # -- the run -------------------------------------------------------------------------------
    def run_app(self, app: Path, *, timeout: float, on_line: Callable[[str], None] | None = None) -> dict:
        """``flwr run APP pmed --stream``; returns the ServerApp's result (a dict)."""
        (self.home / "config.toml").write_text(
            '[superlink]\ndefault = "pmed"\n\n[superlink.pmed]\n'
            f'address = "{self.superlink}"\ninsecure = true\n')
        cmd = [_bin("flwr"), "run", str(app), "pmed", "--stream"]
        log = self.logdir / "flwr_run.log"
        self.logs["flwr-run"] = log
        out_file = app / "result.json"
        from pmed.federated.flower_app import RESULT_TAG

        result: dict | None = None
        with open(log, "w") as fh:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
                                 start_new_session=True, cwd=self.workdir, text=True, bufsize=1)
            self.procs["flwr-run"] = p
            t0 = time.monotonic()
            import selectors

            sel = selectors.DefaultSelector()
            sel.register(p.stdout, selectors.EVENT_READ)
            buf = ""
            while True:
                if time.monotonic() - t0 > timeout:
                    self.stop("flwr-run")
                    raise FederatedError(
                        f"the federated run did not finish within {timeout:.0f} s (a site may hang); "
                        f"the SuperLink's log ends:\n{_tail(self.logs.get('superlink', log))}",
                        fix="raise --timeout, or check the sites' SuperNodes")
                if not sel.select(timeout=0.5):
                    if p.poll() is not None:
                        break
                    continue
                chunk = p.stdout.readline()
                if not chunk:
                    if p.poll() is not None:
                        break
                    continue
                fh.write(chunk)
                fh.flush()
                buf = chunk.strip()
                if RESULT_TAG in buf:
                    text = buf.split(RESULT_TAG, 1)[1]
                    result = json.loads(text[text.find("{"): text.rfind("}") + 1])
                    break
                if on_line is not None and "pmed:" in buf:
                    on_line(buf.split("pmed:", 1)[1].strip())
            sel.close()
            self.stop("flwr-run")  # the stream ends when the run does; do not wait on it
        if out_file.exists():  # local mode: the whole result (the log line leaves out per-round parameters)
            result = json.loads(out_file.read_text())
        if result is None:
            raise FederatedError(
                f"the federated run ended without a result (flwr run exit code {p.returncode}); its log ends:\n"
                f"{_tail(log)}")
        if "error" in result:
            events = "".join(f"\n    {e}" for e in result.get("events", []))
            raise FederatedError(f"the federated run failed: {result['error']}{events}")
        return result

    def __enter__(self) -> Deployment:
        self._old = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _raise_interrupt)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        if getattr(self, "_old", None) is not None:
            signal.signal(signal.SIGTERM, self._old)


def _raise_interrupt(signum, frame):  # SIGTERM -> KeyboardInterrupt -> finally: close()
    raise KeyboardInterrupt
