"""ASGI middleware of the service: body limit (413), audit row per request, log line; rate limiter."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import traceback
from collections import deque

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pmed.serve.db import Audit, utcnow

__all__ = ["AuditMiddleware", "RateLimiter"]

log = logging.getLogger("pmed.serve")


class RateLimiter:
    """Sliding-window limit of requests per key (a token's hash) and minute, for this worker only.

    With ``n`` workers a token may make up to ``n × limit`` requests a minute in all: the limit
    protects each worker from one client, it is not a quota (docs/serve.md).
    """

    def __init__(self, per_minute: int, *, window: float = 60.0) -> None:
        self.limit = int(per_minute)
        self.window = float(window)
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float | None:
        """Record a request of ``key``; ``None`` if allowed, else seconds until one is."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return max(q[0] + self.window - now, 0.0)
            q.append(now)
            return None


class AuditMiddleware:
    """Read the body (at most ``max_body_bytes``, else 413), then write one audit row per request.

    The row is committed when the response starts, before its first byte is sent: a response the
    audit could not record is not given (the request fails with 500 instead). Route handlers put
    the user, model and outcome in ``request.state``; the row gets the SHA-256 of the body, never
    the body. The log line names method, route, status and time only.
    """

    def __init__(self, app, *, engine: Engine, max_body_bytes: int) -> None:
        self.app = app
        self.engine = engine
        self.max_body_bytes = int(max_body_bytes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from pmed.serve.problems import problem

        t0 = time.perf_counter()
        state = scope.setdefault("state", {})
        body, too_large = await self._read(scope, receive)
        state["input_sha256"] = hashlib.sha256(body).hexdigest() if body else None
        if too_large:
            state["outcome"] = "body-too-large"
            resp = problem(413, "Content Too Large", f"the request body exceeds {self.max_body_bytes} bytes",
                           type_="urn:pmed:problem:413")
            await self._audit(scope, 413)
            await resp(scope, receive, send)
            self._log(scope, 413, t0)
            return
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = {}

        async def send_audited(message) -> None:
            if message["type"] == "http.response.start":
                started["status"] = message["status"]
                await self._audit(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, replay, send_audited)
        except Exception as e:
            # a bug: logged by type and place only (its message may quote data), answered with a
            # bare 500 here so that no server layer prints the traceback with the message
            where = traceback.extract_tb(e.__traceback__)[-1]
            log.error("unhandled %s at %s:%d in %s %s", type(e).__name__, where.filename, where.lineno,
                      scope["method"], self._route(scope))
            if "status" not in started:
                state["outcome"] = "error"
                resp = problem(500, "Internal Server Error", "the server failed; see its log",
                               type_="urn:pmed:problem:500")
                await resp(scope, receive, send_audited)
            self._log(scope, 500, t0)
            return
        self._log(scope, started.get("status", 500), t0)

    async def _read(self, scope, receive) -> tuple[bytes, bool]:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return b"", True  # refused before reading a byte
        chunks, n = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunk = msg.get("body", b"")
            n += len(chunk)
            if n > self.max_body_bytes:
                return b"", True
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        return b"".join(chunks), False

    @staticmethod
    def _route(scope) -> str:
        # the route's template (/api/models/{name}/predict) when matched; an unmatched path as sent,
        # cut short (query strings are never recorded)
        route = scope.get("route")
        path = getattr(route, "path", None)
        return path or scope.get("path", "")[:200]

    async def _audit(self, scope, status: int) -> None:
        from starlette.concurrency import run_in_threadpool

        state = scope.get("state", {})
        outcome = state.get("outcome") or ("ok" if status < 400 else f"http-{status}")
        row = Audit(time=utcnow(), user=state.get("user"), route=self._route(scope), method=scope["method"],
                    model=state.get("model"), model_sha256=state.get("model_sha256"),
                    input_sha256=state.get("input_sha256"), status_code=int(status), outcome=outcome[:64])
        # rows a successful route left to store (a prediction's input rows) share the audit
        # row's transaction, committed before the response starts
        pending = state.get("pending", []) if status < 400 else []
        await run_in_threadpool(self._write, [*pending, row])

    def _write(self, rows: list) -> None:
        with Session(self.engine) as s, s.begin():
            s.add_all(rows)

    def _log(self, scope, status: int, t0: float) -> None:
        log.info("%s %s %d %.1f ms", scope["method"], self._route(scope), status, 1000 * (time.perf_counter() - t0))
