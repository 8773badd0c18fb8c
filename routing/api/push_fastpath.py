"""The gateway telemetry push, answered in front of Django's WSGI handler.

Every gateway pushes its last minute every 60 s: 167 pushes a second at 10,000 gateways. Through
the whole stack (request object, thirteen middleware, URL resolution across every app's routes, DRF's
request, negotiation and rendering) a push cost about as much web CPU again as its own work.

`TelemetryPushWSGI` runs the same steps as `GatewayTelemetryView` on the same code, without the
stack: the gateway's token and the SLOs its push may feed in one read (`routing.fleet.auth.push_read`),
DRF's own ingest throttle, then `routing.api.fleet_views.telemetry_accept` (size, JSON, limits,
ingest), answered with DRF's renderer and the project's exception handler and the headers the stack
would add. It takes only what it can answer exactly as the stack would; it hands to Django, unread
(the body it read is put back), any request that is not a plain push over PostgreSQL, that Django
would redirect to HTTPS, whose token is not a gateway's current token for the URL's gateway (a
refused token is counted and answered by the stack; a rotation's previous token is recorded there),
that is throttled (DRF answers the 429; a refused request is not counted), or whose database read
fails (the stack answers 503). From the throttle on, it answers everything itself, so a request is
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

# the route is routing.api.fleet_urls "gateway-telemetry" (a trailing slash is optional there too)
_PUSH_PATH = re.compile(r"^/api/v1/gateways/([0-9]+)/telemetry/?$")


class TelemetryPushWSGI:
    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            match = _PUSH_PATH.match(environ.get("PATH_INFO", ""))
            if match is not None and not environ.get("QUERY_STRING"):
                answer = _push(environ, match.group(1))
                if answer is not None:
                    status, headers, body = answer
                    start_response(status, headers)
                    return [body]
        return self.app(environ, start_response)


def _push(environ: dict[str, Any], pk: str) -> tuple[str, list[tuple[str, str]], bytes] | None:
    secure = is_secure(environ)
    if settings.SECURE_SSL_REDIRECT and not secure:
        return None  # SecurityMiddleware redirects it
    scheme, _, raw_token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    raw_token = raw_token.strip()
    if scheme not in ("Bearer", "Gateway") or not raw_token:
        return None
    from routing.fleet.credentials import GATEWAY_TOKEN_PREFIX, hash_gateway_token

    if not raw_token.startswith(GATEWAY_TOKEN_PREFIX):
        return None
    from slo.telemetry.batch_format import MAX_BATCH_BYTES

    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None  # no length (chunked) or a bad one: the stack reads it its own way
    if not 0 <= length <= MAX_BATCH_BYTES or connection.vendor != "postgresql":
        return None
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    request_id = incoming if valid_request_id(incoming) else uuid.uuid4().hex
    token = set_request_id(request_id)
    # what Django's handler does around a request: close connections past their age or broken
    signals.request_started.send(sender=WSGIHandler, environ=environ)
    try:
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # for the stack, if it answers after all
        answer = _authenticated_push(pk, raw_token, raw, hash_gateway_token)
    finally:
        signals.request_finished.send(sender=WSGIHandler)
        reset_request_id(token)
    if answer is None:
        environ["wsgi.input"].seek(0)
        return None
    status, headers, body = answer
    headers += _stack_headers(secure)
    headers.append(("X-Request-ID", request_id))
    return status, headers, body


def _authenticated_push(
    pk: str, raw_token: str, raw: bytes, hash_token: Callable[[str], str]
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    from rest_framework.renderers import JSONRenderer
    from rest_framework.throttling import ScopedRateThrottle

    from controlplane.api.errors import PROBLEM_CONTENT_TYPE, exception_handler
    from routing.api.fleet_views import GatewayTelemetryView, telemetry_accept
    from routing.fleet.auth import CURRENT_TOKEN, push_read

    try:
        read = push_read(hash_token(raw_token), timezone.now(), pk)
    except DatabaseError:
        return None  # the stack answers it (503 with Retry-After)
    if read is None or read[1] is not CURRENT_TOKEN or str(read[0].gateway_id) != pk:
        return None  # refused, a previous token, or another gateway's: the stack answers
    principal = read[0]
    # DRF's own throttle on the same key (`throttle_ingest_gateway-<id>`); a refusal is not counted
    view = SimpleNamespace(throttle_scope=GatewayTelemetryView.throttle_scope)
    if not ScopedRateThrottle().allow_request(SimpleNamespace(user=principal), view):  # type: ignore[arg-type]
        return None
    try:
        body = telemetry_accept(pk, principal, raw)
    except Exception as exc:  # answered as the view's exception handler would
        response = exception_handler(exc, {})
        if response is None:
            if not isinstance(exc, DatabaseError) or "connection" not in str(exc).lower():
                raise
            logger.error("database unavailable: %s", exc.__class__.__name__)
            from controlplane.api.errors import problem_body

            data, code, extra = (
                problem_body(503, "database unavailable, retry later"),
                503,
                [("Retry-After", "5")],
            )
        else:
            data, code = response.data, response.status_code
            extra = [(name, value) for name, value in response.items() if name.lower() != "content-type"]
        rendered = JSONRenderer().render(data)
        return (
            _status(code),
            [("Content-Type", PROBLEM_CONTENT_TYPE), *extra, *_drf_headers(rendered)],
            rendered,
        )
    rendered = JSONRenderer().render(body)
    return _status(202), [("Content-Type", "application/json"), *_drf_headers(rendered)], rendered


def _status(code: int) -> str:
    from http import HTTPStatus

    return f"{code} {HTTPStatus(code).phrase}"


def _drf_headers(rendered: bytes) -> list[tuple[str, str]]:
    """What DRF's APIView adds to every answer of this view."""
    return [("Vary", "Accept"), ("Allow", "POST, OPTIONS"), ("Content-Length", str(len(rendered)))]


def _stack_headers(secure: bool) -> list[tuple[str, str]]:
    """The middleware's headers on an API answer (X-Request-ID is added by the caller): the poll's
    but for Cache-Control, which SecurityHeadersMiddleware sets to no-store on the API."""
    return [*{**poll_headers(), "Cache-Control": "no-store"}.items(), *hsts_header(secure)]
