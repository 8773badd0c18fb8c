"""The gateway config poll, answered before the middleware stack when nothing changed.

Every gateway polls `GET /api/v1/gateways/{id}/config` with `If-None-Match` every few seconds, and
almost every answer is 304. Through the whole stack (sessions, CSRF, auth, messages, URL resolution
across every app's routes) a 304 cost twice the CPU of the one indexed read it needs. This
middleware sits after RequestIdMiddleware (so the 304 still carries `X-Request-ID`) and
SecurityMiddleware (so a plain-HTTP poll is redirected to https and an HTTPS one gets HSTS, like any
other answer), answers the 304 itself with the headers the rest of the stack would have added, and
hands everything else (200, 401, 403, 404, a previous token, a database error) to the stack
unchanged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from controlplane.middleware import SecurityHeadersMiddleware, valid_request_id
from routing.fleet.bundle import bundle_etag

# the route is routing.api.fleet_urls "gateway-config" (a trailing slash is optional there too)
_CONFIG_PATH = re.compile(r"^/api/v1/gateways/([0-9]+)/config/?$")


def poll_headers() -> dict[str, str]:
    """The headers the rest of the stack would add to a 304 (but HSTS and X-Request-ID)."""
    headers = {
        "Content-Security-Policy": SecurityHeadersMiddleware.CSP,
        "X-Frame-Options": settings.X_FRAME_OPTIONS,
        "Cache-Control": "no-cache",  # as on the 200 it revalidates: use the copy after asking
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers["X-Content-Type-Options"] = "nosniff"
    if settings.SECURE_REFERRER_POLICY:
        headers["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
    return headers


class ConfigPollFastPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.headers = poll_headers()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and "HTTP_IF_NONE_MATCH" in request.META:
            match = _CONFIG_PATH.match(request.path_info)
            if match is not None:
                from routing.api.fleet_views import config_not_modified

                try:
                    response = config_not_modified(request, match.group(1))
                except DatabaseError:
                    response = None  # the stack answers it (503 with Retry-After)
                if response is not None:
                    for name, value in self.headers.items():
                        response[name] = value
                    return response
        return self.get_response(request)


def hsts_header(secure: bool) -> list[tuple[str, str]]:
    """SecurityMiddleware's Strict-Transport-Security on an HTTPS answer, as a WSGI header list."""
    if not (secure and settings.SECURE_HSTS_SECONDS):
        return []
    hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        hsts += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        hsts += "; preload"
    return [("Strict-Transport-Security", hsts)]


def is_secure(environ: dict[str, Any]) -> bool:
    """HttpRequest.is_secure on a WSGI environ: the trusted proxy header when set, else the scheme."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = environ.get(header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


class ConfigPollWSGI:
    """The same 304, one step earlier: in front of Django's WSGI handler (controlplane.wsgi), for a
    poll whose answer is in the Redis poll cache. No request object, no signals, no middleware: a
    cache read, a SHA-256 and a hash comparison. It answers only what the stack would answer the
    same way: a poll that would be redirected to HTTPS, that the cache cannot answer (a miss, a
    previous or a wrong token, another revision) goes to Django unchanged, whose middleware above
    reads the database. The headers are the stack's (`test_poll_cache` compares them)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "GET" and "HTTP_IF_NONE_MATCH" in environ:
            match = _CONFIG_PATH.match(environ.get("PATH_INFO", ""))
            if match is not None:
                answer = self._not_modified(environ, match.group(1))
                if answer is not None:
                    start_response("304 Not Modified", answer)
                    return []
        return self.app(environ, start_response)

    @staticmethod
    def _not_modified(environ: dict[str, Any], pk: str) -> list[tuple[str, str]] | None:
        secure = is_secure(environ)
        if settings.SECURE_SSL_REDIRECT and not secure:
            return None  # SecurityMiddleware redirects it
        from routing.api.fleet_views import cached_not_modified

        revision = cached_not_modified(environ, pk)
        if revision is None:
            return None
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        headers = [("ETag", bundle_etag(revision)), *poll_headers().items(), *hsts_header(secure)]
        headers.append(("X-Request-ID", incoming if valid_request_id(incoming) else uuid.uuid4().hex))
        return headers
