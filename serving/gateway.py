"""ASGI middleware in front of the service: what reaches BentoML, and what is recorded of it.

- **Bearer token**: when ``BONEMET_API_TOKEN`` is set, ``/predict``, ``/explain``, ``/model``
  and ``/fhir/`` require ``Authorization: Bearer <token>`` (401 otherwise; the scheme name in any
  case, RFC 7235); health, readiness, metrics and the API schema stay open for orchestrators.
  ``/cds-services`` is not behind it: EHRs authenticate with their signed JWT (serving.cds).
- **Bodies**: a body (``POST``, ``PUT``, ``PATCH``) must be ``application/json`` (415 otherwise:
  a form or multipart body never reaches BentoML's form parser, and a web page cannot make a
  browser post one blind), at most ``BONEMET_MAX_BODY_BYTES`` (default 10 MB; 413, whether
  announced by ``Content-Length`` or streamed), complete within ``BONEMET_BODY_TIMEOUT_SECONDS``
  (default 30; 408 for a slow or stalled client), and a JSON object may name a key only once
  (400, ``loc`` the object's place in the body: JSON parsers keep the last, silently).
- **Metric labels**: BentoML labels its request metrics with the request path; here the label is
  the route (:data:`ROUTES`) or ``"other"``, so no client-sent path reaches ``/metrics`` and its
  size does not grow with the paths asked for (:func:`bound_metric_labels`).
- **Readiness**: ``GET /readyz`` answers BentoML's readiness with a JSON body from the service
  (the version served, the registry alias followed, the alias target it failed to load).
- **Audit**: one JSON line per request on the ``bonemet.audit`` logger with request id, method,
  route, status, latency, model version and number of patients; never a patient field. The
  request id is returned as ``X-Request-ID``.
- **No request values in any log**: :mod:`serving.logs` redacts the exceptions BentoML and
  uvicorn log (a rejected body's pydantic error quotes its values): on the loggers that log
  request failures when this module is imported (the server process imports it with the
  service), and on every handler too when the middleware is built, after BentoML has
  configured logging.

The variables are read by :class:`serving.settings.ServingSettings`; the service hands the
middleware its settings object.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from serving import logs
from serving.settings import ServingSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: /cds-services/* is not here: CDS clients authenticate with their signed JWT (serving.cds).
PROTECTED_PREFIXES = ("/predict", "/explain", "/model", "/fhir/")
#: The service's routes: the metric label and audit ``path`` of a request; any other is "other".
ROUTES = frozenset(
    {
        "/",
        "/predict",
        "/explain",
        "/model",
        "/model/card",
        "/clinician",
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
        "/docs.json",
        "/cds-services",
        "/cds-services/bone-metastasis-risk",
        "/cds-services/bone-metastasis-risk/feedback",
        "/fhir/RiskAssessment",
    }
)
#: Route prefixes of files (BentoML's Swagger UI assets), labelled by the prefix.
ROUTE_PREFIXES = ("/static_content/", "/clinician/static/")
OTHER_ROUTE = "other"
JSON_MEDIA_TYPE = "application/json"
audit_logger = logging.getLogger("bonemet.audit")
logs.install(handlers=False)  # the source loggers now; every handler once the server runs


def route_label(path: str) -> str:
    """The route a path belongs to, from a fixed set: a known route, a file prefix, or "other".

    Parameters
    ----------
    path : str
        The request path as sent by the client.

    Returns
    -------
    str
        ``path`` itself for a route of :data:`ROUTES`, the prefix without its final slash for a
        path under :data:`ROUTE_PREFIXES`, else ``"other"``.
    """
    if path in ROUTES:
        return path
    for prefix in ROUTE_PREFIXES:
        if path.startswith(prefix):
            return prefix.rstrip("/")
    return OTHER_ROUTE


def bound_metric_labels() -> None:
    """Make BentoML label its request metrics with :func:`route_label`, not the raw path.

    BentoML 1.4's ``RunnerTrafficMetricsMiddleware`` (the outermost middleware, before any of
    the service's) labels ``request_total``, ``request_duration_seconds`` and
    ``request_in_progress`` with ``scope["path"]``: one new time series per path a client
    invents, for the life of the worker (6,000 unknown paths grew ``/metrics`` from 110 KB to
    47 MB). The replacement hands BentoML's code a copy of the scope whose path is the label
    and gives the application the original scope back. BentoML builds its middleware stack in
    the worker after importing the service, which imports this module: the replacement is in
    place by then. Idempotent.
    """
    from bentoml._internal.server.http import instruments

    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "bonemet_bounded", False):
        return

    class BoundedLabelsMetricsMiddleware(base):  # type: ignore[misc, valid-type]
        bonemet_bounded = True

        def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
            async def original_scope(scope: Scope, receive: Receive, send: Send) -> None:
                await app(scope.get("bonemet.scope", scope), receive, send)

            super().__init__(original_scope, *args, **kwargs)

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"].startswith("http"):
                label = route_label(scope["path"])
                if label != scope["path"]:
                    scope = {**scope, "path": label, "bonemet.scope": scope}
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = BoundedLabelsMetricsMiddleware


bound_metric_labels()


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

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        readiness: Callable[[], dict[str, Any] | None] | None = None,
        document: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        settings: ServingSettings | None = None,
    ) -> None:
        self.app = app
        self.readiness = readiness
        self.document = document
        settings = ServingSettings.from_env() if settings is None else settings
        self.token = settings.api_token
        self.max_body = settings.max_body_bytes
        self.body_seconds = settings.body_timeout_seconds
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
            path = route_label(scope.get("path", ""))
            if path not in ("/healthz", "/livez", "/readyz", "/metrics"):
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
        method = scope.get("method")
        # A CORS preflight (OPTIONS) carries no credentials by design; it reaches no handler.
        if (
            self.token
            and method != "OPTIONS"
            and path.startswith(PROTECTED_PREFIXES)
            and not self._authorized(scope)
        ):
            await _json(
                send,
                401,
                {"error": "missing or invalid bearer token"},
                [(b"www-authenticate", b'Bearer realm="bonemet"')],
            )
            return
        if method in ("POST", "PUT", "PATCH"):
            if _media_type(scope) != JSON_MEDIA_TYPE:
                await _json(send, 415, {"error": f"unsupported media type: send {JSON_MEDIA_TYPE}"})
                return
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
                await _json(send, 413, _too_large(self.max_body))
                return
            try:
                with anyio.fail_after(self.body_seconds):
                    body, too_large = await _read_body(receive, self.max_body)
            except TimeoutError:
                await _json(
                    send,
                    408,
                    {"error": f"request body not received within {self.body_seconds:g} s"},
                    [(b"connection", b"close")],
                )
                return
            if too_large:
                await _json(send, 413, _too_large(self.max_body))
                return
            duplicates = duplicate_keys(body)
            if duplicates:
                detail = [
                    {"loc": loc, "msg": "duplicate key: a JSON object may name a key only once"}
                    for loc in duplicates
                ]
                await _json(
                    send,
                    400,
                    {"error": f"{len(detail)} duplicate key(s) in the JSON body", "detail": detail},
                )
                return
            receive = _replay(body, receive)
        if method == "GET" and path == "/readyz" and self.readiness is not None:
            readiness = self.readiness
            await self._rewrite(
                scope, receive, send, lambda _: {"ready": True, **(readiness() or {})}
            )
            return
        if method == "GET" and path == "/docs.json" and self.document is not None:
            await self._rewrite(scope, receive, send, self.document)
            return
        await self.app(scope, receive, send)

    async def _rewrite(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rewrite: Callable[[Any], dict[str, Any]],
    ) -> None:
        """The app's answer; a 200 with its JSON body (None if not JSON) rewritten."""
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                if message["status"] != 200:
                    await send(message)
            elif start.get("status") != 200:
                await send(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start.get("status") == 200:
            try:
                body = json.loads(b"".join(chunks))
            except ValueError:
                body = None
            await _json(send, 200, rewrite(body))

    def _authorized(self, scope: Scope) -> bool:
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                scheme, _, credentials = value.strip().partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    credentials.strip(), self.token.encode()
                )
        return False


def duplicate_keys(body: bytes) -> list[list[Any]]:
    """Where a JSON body names a key twice in one object, as ``loc`` lists (object path + key).

    Returns ``[]`` for a body without duplicates and for one that is not JSON at all (the
    service's own parser answers that with a 400). The body is parsed once more for this; it
    costs microseconds for a patient, milliseconds for a full batch.
    """
    found: list[tuple[dict, str]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict:
        obj: dict = {}
        for key, value in items:
            if key in obj:
                found.append((obj, key))
            obj[key] = value
        return obj

    try:
        tree = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return []
    if not found:
        return []
    places: dict[int, list[Any]] = {}

    def walk(node: Any, loc: list[Any]) -> None:
        if isinstance(node, dict):
            places[id(node)] = loc
            for key, value in node.items():
                walk(value, [*loc, key])
        elif isinstance(node, list):
            for k, value in enumerate(node):
                walk(value, [*loc, k])

    try:
        walk(tree, [])
    except RecursionError:  # nested nearly as deep as the parser allows: the key alone
        places.clear()
    return [[*places.get(id(obj), []), key] for obj, key in found]


def _media_type(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return None


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
