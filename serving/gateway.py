"""ASGI middleware in front of the service: bearer token, body size limit, audit log.

- **Bearer token**: when ``BONEMET_API_TOKEN`` is set, ``/predict`` and ``/model`` require
  ``Authorization: Bearer <token>`` (401 otherwise); health, readiness, metrics and the API
  schema stay open for orchestrators.
- **Body size**: bodies above ``BONEMET_MAX_BODY_BYTES`` (default 10 MB) get 413 before the
  service parses anything, whether announced by ``Content-Length`` or streamed.
- **Audit**: one JSON line per request on the ``bonemet.audit`` logger with request id, method,
  path, status, latency, model version and number of patients; never a patient field. The
  request id is returned as ``X-Request-ID``.
- **No request values in any log**: :mod:`serving.logs` redacts the exceptions BentoML and
  uvicorn log (a rejected body's pydantic error quotes its values): on the loggers that log
  request failures when this module is imported (the server process imports it with the
  service), and on every handler too when the middleware is built, after BentoML has
  configured logging.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving import logs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PROTECTED_PREFIXES = ("/predict", "/explain", "/model")
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
audit_logger = logging.getLogger("bonemet.audit")
logs.install(handlers=False)  # the source loggers now; every handler once the server runs


def _configure_audit_logger() -> None:
    """``bonemet.*`` loggers (audit lines, model swaps) print one message per line to stderr."""
    root = logging.getLogger("bonemet")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


class GatewayMiddleware:
    """Authentication, body-size limit and audit logging for the BentoML ASGI app."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.token = os.environ.get("BONEMET_API_TOKEN") or None
        self.max_body = int(os.environ.get("BONEMET_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
        _configure_audit_logger()
        logs.install()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        facts: dict[str, Any] = {"status": None, "model_version": None, "n_patients": None}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                facts["status"] = message["status"]
                headers = list(message.get("headers", []))
                for key, value in headers:
                    if key == b"x-model-version":
                        facts["model_version"] = value.decode("latin-1")
                    elif key == b"x-patients":
                        facts["n_patients"] = int(value)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self._handle(scope, receive, send_wrapper)
        finally:
            path = scope.get("path", "")
            if not path.startswith(("/healthz", "/livez", "/readyz", "/metrics")):
                audit_logger.info(
                    json.dumps(
                        {
                            "event": "request",
                            "request_id": request_id,
                            "method": scope.get("method"),
                            "path": path,
                            "status": facts["status"],
                            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                            "model_version": facts["model_version"],
                            "n_patients": facts["n_patients"],
                        }
                    )
                )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.token and path.startswith(PROTECTED_PREFIXES) and not self._authorized(scope):
            await _json(
                send,
                401,
                {"error": "missing or invalid bearer token"},
                [(b"www-authenticate", b'Bearer realm="bonemet"')],
            )
            return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
                await _json(send, 413, _too_large(self.max_body))
                return
            body, too_large = await _read_body(receive, self.max_body)
            if too_large:
                await _json(send, 413, _too_large(self.max_body))
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                expected = f"Bearer {self.token}".encode()
                return hmac.compare_digest(value, expected)
        return False


def _too_large(limit: int) -> dict[str, str]:
    return {"error": f"request body larger than {limit} bytes"}


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes, upstream: Receive) -> Receive:
    """Hand the buffered body to the app once, then the client's own messages (disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await upstream()

    return receive


async def _json(send: Send, status: int, body: dict, extra=()) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
