"""A gateway's telemetry push and heartbeat, answered in front of Django's WSGI handler.

Every gateway pushes its last minute every 60 s and heartbeats every 15 s: 167 pushes and 667
heartbeats a second at 10,000 gateways. Through the whole stack (request object, thirteen middleware,
URL resolution across every app's routes, DRF's request, negotiation and rendering) each cost about
as much web CPU again as its own work.

`GatewayWritesWSGI` runs the same steps as `GatewayTelemetryView` and `GatewayHeartbeatView` on the
same code, without the stack: the gateway's token in one read (`routing.fleet.auth.gateway_read`, which
for a push also reads the SLOs it may feed), the view's own throttles (DRF's classes on the same
keys), then the view's work (`telemetry_accept`, `heartbeat_answer`), answered with DRF's renderer,
the project's exception handler and the headers the stack would add. It takes only what it can answer
exactly as the stack would; it hands to Django, unread (the body it read is put back), any request
that is not a plain POST over PostgreSQL, that Django would redirect to HTTPS, whose token is not a
gateway's current token for the URL's gateway (a refused token is counted and answered by the stack;
a rotation's previous token is recorded there), that a throttle refuses (DRF answers the 429; a
refusal is not counted), a heartbeat whose body is not `application/json`, or whose database read
fails (the stack answers 503). From the throttles on, it answers everything itself, so a request is
never counted twice.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, connection
from django.utils import timezone

from controlplane.middleware import reset_request_id, set_request_id, valid_request_id
from routing.api.fastpath import hsts_header, is_secure, poll_headers

logger = logging.getLogger(__name__)

# the routes are routing.api.fleet_urls "gateway-telemetry" and "gateway-heartbeat" (a trailing slash
# is optional there too)
_PATH = re.compile(r"^/api/v1/gateways/([0-9]+)/(telemetry|heartbeat)/?$")
# a heartbeat is a few hundred bytes; a larger one is the stack's to parse and refuse
_HEARTBEAT_MAX_BYTES = 64 * 1024

Answer = tuple[str, list[tuple[str, str]], bytes]


class GatewayWritesWSGI:
    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            match = _PATH.match(environ.get("PATH_INFO", ""))
            if match is not None and not environ.get("QUERY_STRING"):
                answer = _answer(environ, match.group(1), match.group(2))
                if answer is not None:
                    status, headers, body = answer
                    start_response(status, headers)
                    return [body]
        return self.app(environ, start_response)


def _answer(environ: dict[str, Any], pk: str, endpoint: str) -> Answer | None:
    secure = is_secure(environ)
    if settings.SECURE_SSL_REDIRECT and not secure:
        return None  # SecurityMiddleware redirects it
    scheme, _, raw_token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    raw_token = raw_token.strip()
    if scheme not in ("Bearer", "Gateway") or not raw_token:
        return None
    from routing.fleet.credentials import GATEWAY_TOKEN_PREFIX
    from slo.telemetry.batch_format import MAX_BATCH_BYTES

    if not raw_token.startswith(GATEWAY_TOKEN_PREFIX):
        return None
    if endpoint == "heartbeat" and environ.get("CONTENT_TYPE") != "application/json":
        return None  # DRF negotiates other types (or answers 415)
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None  # no length (chunked) or a bad one: the stack reads it its own way
    limit = MAX_BATCH_BYTES if endpoint == "telemetry" else _HEARTBEAT_MAX_BYTES
    if not 0 <= length <= limit or connection.vendor != "postgresql":
        return None
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    request_id = incoming if valid_request_id(incoming) else uuid.uuid4().hex
    token = set_request_id(request_id)
    # what Django's handler does around a request: close connections past their age or broken
    signals.request_started.send(sender=WSGIHandler, environ=environ)
    try:
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # for the stack, if it answers after all
        answer = _authenticated(pk, endpoint, raw_token, raw)
    finally:
        signals.request_finished.send(sender=WSGIHandler)
        reset_request_id(token)
    if answer is None:
        environ["wsgi.input"].seek(0)
        return None
    status, headers, body = answer
    # the middleware's headers on an API answer: the poll's, but SecurityHeadersMiddleware's no-store
    headers += [*{**poll_headers(), "Cache-Control": "no-store"}.items(), *hsts_header(secure)]
    headers.append(("X-Request-ID", request_id))
    return status, headers, body


def _authenticated(pk: str, endpoint: str, raw_token: str, raw: bytes) -> Answer | None:
    from routing.api.fleet_views import GatewayHeartbeatView, GatewayTelemetryView
    from routing.fleet.auth import gateway_read
    from routing.fleet.credentials import hash_gateway_token

    view = GatewayTelemetryView if endpoint == "telemetry" else GatewayHeartbeatView
    try:
        # a heartbeat needs the gateway alone: no SLOs read
        read = gateway_read(
            hash_gateway_token(raw_token), timezone.now(), pk if endpoint == "telemetry" else ""
        )
    except DatabaseError:
        return None  # the stack answers it (503 with Retry-After)
    if read is None or read.by_previous_token or str(read.principal.gateway_id) != pk:
        return None  # refused, a previous token, or another gateway's: the stack answers
    principal = read.principal
    # the view's own throttles, on their own keys; a refusal is not counted, and the stack answers it
    request = SimpleNamespace(user=principal, auth=None)
    scope = SimpleNamespace(throttle_scope=getattr(view, "throttle_scope", None))
    for throttle in view().get_throttles():
        if not throttle.allow_request(request, scope):
            return None
    try:
        if endpoint == "telemetry":
            from routing.api.fleet_views import telemetry_accept

            return _rendered(202, telemetry_accept(pk, principal, raw))
        from routing.api.fleet_views import heartbeat_answer

        return _rendered(200, heartbeat_answer(pk, _json_object(raw)))
    except Exception as exc:  # answered as the view's exception handler would
        answer = _error(exc)
        if answer is None:
            raise
        return answer


def _json_object(raw: bytes) -> dict[str, Any]:
    """What DRF's request.data and `json_object_body` make of an application/json body."""
    from controlplane.api.body import json_object_body
    from controlplane.api.parsers import JSONParser

    data = JSONParser().parse(io.BytesIO(raw), "application/json", {}) if raw else {}
    return json_object_body(SimpleNamespace(data=data))  # type: ignore[arg-type]


def _error(exc: Exception) -> Answer | None:
    """The answer the view's exception handler (or, for a lost connection, the stack's
    DatabaseUnavailableMiddleware) gives; None for what would be a 500."""
    from controlplane.api.errors import PROBLEM_CONTENT_TYPE, exception_handler, problem_body

    response = exception_handler(exc, {})
    if response is None:
        if not isinstance(exc, DatabaseError) or "connection" not in str(exc).lower():
            return None
        logger.error("database unavailable: %s", exc.__class__.__name__)
        data, code, extra = (
            problem_body(503, "database unavailable, retry later"),
            503,
            [("Retry-After", "5")],
        )
    else:
        data, code = response.data, response.status_code
        extra = [(name, value) for name, value in response.items() if name.lower() != "content-type"]
    return _rendered(code, data, PROBLEM_CONTENT_TYPE, extra)


def _rendered(
    code: int, data: Any, content_type: str = "application/json", extra: list[tuple[str, str]] | None = None
) -> Answer:
    from http import HTTPStatus

    from rest_framework.renderers import JSONRenderer

    body = JSONRenderer().render(data)
    # what DRF's APIView adds to every answer of these views
    headers = [
        ("Content-Type", content_type),
        *(extra or []),
        ("Vary", "Accept"),
        ("Allow", "POST, OPTIONS"),
        ("Content-Length", str(len(body))),
    ]
    return f"{code} {HTTPStatus(code).phrase}", headers, body
