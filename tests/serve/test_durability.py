"""The audit trail survives a killed server: every answered prediction has its audit row (issue #19, point 6).

``pmed serve`` (SQLite file, 1 worker) runs as a subprocess in its own process group; threads post
single-patient predictions, each with a distinct body, and the whole group is killed with SIGKILL
while requests are in flight. The audit row of a request is committed before its response starts,
so the SHA-256 of every body that got a 200 must be in the audit table, and the prediction id of
every answer in the predictions table.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from serve_helpers import patient_rows, train_bundle  # noqa: E402

from pmed.serve.testing import free_port  # noqa: E402

pytestmark = pytest.mark.slow  # about 20 s: training, starting the server, the load

ROUTE = "/api/models/{name}/predict"  # the audit trail records the route's template
THREADS = 8


def _wait_healthy(base: str, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"pmed serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"pmed serve did not answer /health within 60 s: {log.read_text()[-2000:]}")


def test_sigkill_mid_load_loses_no_audit_row_of_an_answer(tmp_path):
    from pmed.serve import create_token

    paths = train_bundle(tmp_path)
    db_file = tmp_path / "serve.sqlite"
    db = f"sqlite:///{db_file}"
    token = create_token(db, role="clinician", user="durability")
    port, log = free_port(), tmp_path / "serve.log"
    # the rate limit is raised: the default (120 a minute) would answer 429 within a second
    cmd = [sys.executable, "-m", "pmed", "serve", "--models", str(paths["models"]), "--db", db,
           "--port", str(port), "--workers", "1", "--rate-limit", "1000000"]
    with open(log, "wb") as fh:
        # its own process group: SIGKILL reaches uvicorn and anything it started, and nothing else
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    template = patient_rows(paths["new"])[0]
    sent: set[str] = set()  # SHA-256 of every body sent
    answered: dict[str, str] = {}  # SHA-256 of the body -> prediction id, for every 200
    other: list[int] = []  # any other status (there should be none)
    cut: list[str] = []  # requests that got no answer: in flight at the kill, or sent after it
    lock, killed = threading.Lock(), threading.Event()

    def client(k: int) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            for i in range(100_000):
                # a distinct patient ID makes a distinct body, so each request has its own hash
                body = json.dumps({"patients": [dict(template, patient_id=f"D{k}-{i}")]}).encode()
                digest = hashlib.sha256(body).hexdigest()
                with lock:
                    sent.add(digest)
                try:
                    r = c.post("/api/models/test-event/predict", content=body)
                except httpx.TransportError as e:
                    with lock:
                        cut.append(type(e).__name__)
                    if killed.is_set():
                        return
                    raise
                with lock:
                    if r.status_code == 200:
                        answered[digest] = r.json()["prediction_id"]
                    else:
                        other.append(r.status_code)

    try:
        _wait_healthy(base, proc, log)
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(client, k) for k in range(THREADS)]
            t0 = time.monotonic()
            # about 3 s of load, and enough answers for the check to mean something
            while time.monotonic() - t0 < 3 or (len(answered) < 10 and time.monotonic() - t0 < 20):
                time.sleep(0.05)
            killed.set()
            os.killpg(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            for f in futures:
                f.result(timeout=60)  # a client that failed before the kill fails the test here
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert other == []
    assert len(answered) >= 10
    assert len(cut) >= 1  # requests were being sent when the kill came: it was mid-load
    # the database as the killed server left it (a hot journal would be rolled back on opening)
    with closing(sqlite3.connect(db_file)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        audited = {h for (h,) in con.execute(
            "SELECT input_sha256 FROM audit WHERE route = ? AND status_code = 200 AND model = 'test-event'",
            (ROUTE,))}
        stored = {p for (p,) in con.execute("SELECT id FROM predictions")}
        n_audited_200 = con.execute("SELECT count(*) FROM audit WHERE route = ? AND status_code = 200",
                                    (ROUTE,)).fetchone()[0]
    missing = set(answered) - audited
    assert not missing, f"{len(missing)} of {len(answered)} answered predictions have no audit row"
    assert set(answered.values()) <= stored
    # a row may exist for a request whose answer the kill cut off, never for a body not sent
    assert audited <= sent
    # the input rows are stored in the audit row's transaction: no stored prediction without one
    assert len(stored) == n_audited_200
