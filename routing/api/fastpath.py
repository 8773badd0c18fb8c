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
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from controlplane.middleware import SecurityHeadersMiddleware

# the route is routing.api.fleet_urls "gateway-config" (a trailing slash is optional there too)
_CONFIG_PATH = re.compile(r"^/api/v1/gateways/([0-9]+)/config/?$")


class ConfigPollFastPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.headers = {
            "Content-Security-Policy": SecurityHeadersMiddleware.CSP,
            "X-Frame-Options": settings.X_FRAME_OPTIONS,
            "Cache-Control": "no-cache",  # as on the 200 it revalidates: use the copy after asking
            "Cross-Origin-Opener-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        }
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            self.headers["X-Content-Type-Options"] = "nosniff"
        if settings.SECURE_REFERRER_POLICY:
            self.headers["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY

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
