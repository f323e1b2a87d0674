"""ASGI middleware in front of the service: what reaches BentoML, and what is recorded of it.

- **Bearer token, closed by default**: when ``BONEMET_API_TOKEN`` is set, every path requires
  ``Authorization: Bearer <token>`` (401 otherwise; the scheme name in any case, RFC 7235)
  except those of :data:`PUBLIC_ROUTES` (health, readiness, the API document, the clinician
  page and its files): a route added to the service is protected without being listed here.
  The CDS Hooks routes (``/cds-services``...) are public to the token: EHRs authenticate with
  their signed JWT, checked by :mod:`serving.cds`; ``/fhir/RiskAssessment`` needs the token.
  A CORS preflight passes only when CORS is on (the CORS middleware answers it).
- **Bodies**: a body sent to a route that takes it (``POST``, ``PUT``, ``PATCH``; any other
  route answers its own 404 or 405) must be ``application/json`` without a
  ``Content-Encoding`` (415 otherwise: a form or multipart body never reaches BentoML's form
  parser, and a web page cannot make a browser post one blind), at most
  ``BONEMET_MAX_BODY_BYTES`` (default 10 MB; 413, whether announced by ``Content-Length`` or
  streamed), complete within ``BONEMET_BODY_TIMEOUT_SECONDS`` (default 30; 408 for a slow or
  stalled client), and a JSON object may name a key only once (400 at the first object that
  does, at most :data:`MAX_REPORTED` places; a large body is checked in a worker thread).
- **Errors in the contract's words**: a 400 listing violations (``detail`` items with ``loc``
  and ``msg``, pydantic's or the contract's) is rewritten so each item names the ``field``,
  the offending ``value`` (bounded), the ``rule`` and, for an unknown field name, the closest
  ``suggestion``; at most :data:`MAX_REPORTED` items.
- **Connections**: a connection must complete a request's headers within
  ``BONEMET_HEADER_TIMEOUT_SECONDS`` (default 10) of opening or of its previous answer, or it
  is closed (silent and slow-header connections; :func:`limit_header_time`).
- **HTML**: an HTML answer without a ``Content-Security-Policy`` gets :data:`DEFAULT_CSP`.
- **Metric labels**: BentoML labels its request metrics with the request path; here the label is
  the route (:data:`ROUTES`) or ``"other"``, so no client-sent path reaches ``/metrics`` and its
  size does not grow with the paths asked for (:func:`bound_metric_labels`).
- **Direct routes**: a route given in ``direct`` (the service's ``POST /predict``:
  :func:`serving.service.answer_predict`) is answered by the gateway itself after every check
  above and before the app, with the same 400 wording and audit line; BentoML's
  per-request dispatch is skipped, not its metrics (outside the gateway). With CORS on, a
  request carrying ``Origin`` still goes to BentoML (its CORS middleware is inside).
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

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import anyio

from serving import logs
from serving.connections import limit_header_time
from serving.errors import MAX_REPORTED, contract_words
from serving.settings import ServingSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: A route answered by the gateway itself (``direct``): the checked body in; status, headers
#: and body out, or None to hand the request to the app.
DirectAnswer = Callable[[bytes], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes] | None]]

#: The only paths answered without the token when one is configured (``*``: any path under
#: the prefix): health and readiness for orchestrators, the API document and its files, the
#: clinician page and its files (the page asks for the token). Everything else, including any
#: route added later, needs the token.
PUBLIC_ROUTES = (
    "/healthz",
    "/livez",
    "/readyz",
    "/",
    "/docs.json",
    "/api/static/*",
    "/static_content/*",
    "/clinician",
    "/clinician/static/*",
    # CDS Hooks: the EHR's signed JWT is checked by serving.cds instead of the token.
    "/cds-services",
    "/cds-services/*",
)
_PUBLIC_EXACT = frozenset(r for r in PUBLIC_ROUTES if not r.endswith("*"))
_PUBLIC_PREFIXES = tuple(r[:-1] for r in PUBLIC_ROUTES if r.endswith("*"))
#: Bodies larger than this are checked for duplicate keys in a worker thread.
INLINE_PARSE_BYTES = 64 * 1024
#: Content-Security-Policy of an HTML answer that sets none: nothing but the service's own.
DEFAULT_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
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
#: Route prefixes of files (the API page's and the clinician page's), labelled by the prefix.
ROUTE_PREFIXES = ("/static_content/", "/api/static/", "/clinician/static/")
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
    """Authentication, body checks, error wording and audit logging for the BentoML app."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        readiness: Callable[[], dict[str, Any] | None] | None = None,
        settings: ServingSettings | None = None,
        direct: Mapping[str, DirectAnswer] | None = None,
    ) -> None:
        self.app = app
        self.readiness = readiness
        self.direct = dict(direct or {})
        settings = ServingSettings.from_env() if settings is None else settings
        self.token = settings.api_token.encode() if settings.api_token else None
        self.cors = bool(settings.cors_origins)
        self.max_body = settings.max_body_bytes
        self.body_seconds = settings.body_timeout_seconds
        self._accepts: dict[tuple[str, str], bool] = {}
        _configure_audit_logger()
        logs.install()
        limit_header_time(settings.header_timeout_seconds)

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
                html = csp = False
                for key, value in headers:
                    if key == b"x-model-version":
                        facts["model_version"] = value.decode("latin-1")
                    elif key == b"x-patients":
                        facts["n_patients"] = int(value)
                    elif key == b"content-type":
                        html = value.startswith(b"text/html")
                    elif key == b"content-security-policy":
                        csp = True
                headers.append((b"x-request-id", request_id.encode()))
                if html and not csp:
                    headers.append((b"content-security-policy", DEFAULT_CSP))
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
        heads = _headers(scope)
        if self.token and not (
            is_public(path)
            or (method == "OPTIONS" and self.cors and b"access-control-request-method" in heads)
            or _authorized(heads.get(b"authorization"), self.token)
        ):
            await _json(
                send,
                401,
                {"error": "missing or invalid bearer token"},
                [(b"www-authenticate", b'Bearer realm="bonemet"')],
            )
            return
        body = None
        if method in ("POST", "PUT", "PATCH") and self._route_accepts(method, path):
            problem = _body_problem(heads, self.max_body)
            if problem is not None:
                await _json(send, *problem)
                return
            try:
                # asyncio's own timeout (the server runs on asyncio): the same deadline as
                # anyio.fail_after at a tenth of its cost per request.
                async with asyncio.timeout(self.body_seconds):
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
            if len(body) > INLINE_PARSE_BYTES:
                duplicates = await anyio.to_thread.run_sync(duplicate_keys, body)
            else:
                duplicates = duplicate_keys(body)
            if duplicates:
                detail = [
                    {"loc": loc, "msg": "duplicate key: a JSON object may name a key only once"}
                    for loc in duplicates
                ]
                answer = {"error": "duplicate key in the JSON body", "detail": detail}
                await _json(send, 400, answer)
                return
            send = _worded_errors(send, body)
            answer = self.direct.get(path) if method == "POST" else None
            # With CORS on, a request from a browser (an Origin header) goes to BentoML, whose
            # CORS middleware adds its headers; the direct answer has none to add.
            if answer is not None and not (self.cors and b"origin" in heads):
                answered = await answer(body)
                if answered is not None:
                    status, headers, payload = answered
                    await send({"type": "http.response.start", "status": status,
                                "headers": headers})  # fmt: skip
                    await send({"type": "http.response.body", "body": payload})
                    return
            receive = _replay(body, receive)
        if method == "GET" and path == "/readyz" and self.readiness is not None:
            readiness = self.readiness
            await self._rewrite(
                scope, receive, send, lambda _: {"ready": True, **(readiness() or {})}
            )
            return
        await self.app(scope, receive, send)

    def _route_accepts(self, method: str, path: str) -> bool:
        """Whether a route of the app takes ``method`` on ``path`` (Starlette's own matching).

        A body sent where no route takes it is left to the app's 404 or 405, unread. Known
        routes are remembered (a bounded cache); the route table is found by following the
        app's ``app`` attributes to its router (True when there is none: every body checked).
        """
        key = (method, path)
        known = self._accepts.get(key)
        if known is not None:
            return known
        router = find_router(self.app)
        if router is None:
            return True
        from starlette.routing import Match

        probe = {"type": "http", "path": path, "method": method, "root_path": ""}
        accepted = any(route.matches(probe)[0] == Match.FULL for route in router.routes)
        if route_label(path) == path:
            self._accepts[key] = accepted
        return accepted

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


def is_public(path: str) -> bool:
    """Whether ``path`` is answered without the token (:data:`PUBLIC_ROUTES`)."""
    return path in _PUBLIC_EXACT or path.startswith(_PUBLIC_PREFIXES)


def find_router(app: Any, depth: int = 32) -> Any:
    """The Starlette router behind ``app`` (the object with ``routes``), or None."""
    for _ in range(depth):
        if app is None:
            return None
        if isinstance(getattr(app, "routes", None), list):
            return app
        app = getattr(app, "app", None)
    return None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request headers the gateway reads, in one pass (the first of each name)."""
    found: dict[bytes, bytes] = {}
    for key, value in scope.get("headers", []):
        if key in _READ_HEADERS and key not in found:
            found[key] = value
    return found


_READ_HEADERS = frozenset(
    {
        b"authorization",
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"access-control-request-method",
        b"origin",
    }
)


def _authorized(value: bytes | None, token: bytes) -> bool:
    if value is None:
        return False
    scheme, _, credentials = value.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), token)


def _body_problem(heads: dict[bytes, bytes], limit: int) -> tuple[int, dict] | None:
    """The 415 or 413 a body gets from its headers alone, or None."""
    media = heads.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    if media != JSON_MEDIA_TYPE.encode():
        return 415, {"error": f"unsupported media type: send {JSON_MEDIA_TYPE}"}
    encoding = heads.get(b"content-encoding", b"identity").strip().lower()
    if encoding not in (b"identity", b""):
        return 415, {
            "error": "unsupported Content-Encoding: send the body uncompressed (identity)"
        }
    try:
        declared = int(heads[b"content-length"]) if b"content-length" in heads else None
    except ValueError:
        declared = None
    if declared is not None and declared > limit:
        return 413, _too_large(limit)
    return None


class _Duplicate(Exception):
    """A JSON object names a key twice (stops the first parse early)."""


def _unique(items: list[tuple[str, Any]]) -> dict:
    obj = dict(items)
    if len(obj) != len(items):
        raise _Duplicate
    return obj


def duplicate_keys(body: bytes) -> list[list[Any]]:
    """Where a JSON body names a key twice in one object, as ``loc`` lists (object path + key).

    Returns ``[]`` for a body without duplicates and for one that is not JSON at all (the
    service's own parser answers that with a 400). The check parses the body once (the C
    parser building each object, a length comparison per object); only a body with a
    duplicate is parsed again to find at most :data:`MAX_REPORTED` places, so a body made of
    a million repeated keys costs one parse and answers a few lines.
    """
    try:
        json.loads(body, object_pairs_hook=_unique)
    except _Duplicate:
        pass
    except (ValueError, RecursionError):
        return []
    else:
        return []
    found: list[tuple[dict, str]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict:
        obj = dict(items)
        if len(obj) != len(items) and len(found) < MAX_REPORTED:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen and len(found) < MAX_REPORTED:
                    found.append((obj, key))
                seen.add(key)
        return obj

    tree = json.loads(body, object_pairs_hook=pairs)
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
    unique = {(id(obj), key): [*places.get(id(obj), []), key] for obj, key in found}
    return list(unique.values())


def _worded_errors(send: Send, body: bytes) -> Send:
    """``send``, with a 400 listing violations rewritten by :func:`contract_words`."""
    held: list[Message] = []

    async def wrapper(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 400:
            held.append(message)
            return
        if not held:
            await send(message)
            return
        held.append(message)
        if message.get("more_body", False):
            return
        start, *chunks = held
        payload = b"".join(m.get("body", b"") for m in chunks)
        try:
            answer = json.loads(payload)
            if len(body) > INLINE_PARSE_BYTES:
                worded = await anyio.to_thread.run_sync(contract_words, answer, body)
            else:
                worded = contract_words(answer, body)
        except (ValueError, RecursionError, TypeError, AttributeError):
            worded = None
        if worded is None:
            await send(start)
            for m in chunks:
                await send(m)
            return
        payload = json.dumps(worded).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return wrapper


def _too_large(limit: int) -> dict[str, str]:
    return {"error": f"request body larger than {limit} bytes"}


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
