"""Request ids, security headers, and a clean 503 when the database is gone."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# Accept a caller's id only when it is short and harmless in logs.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def valid_request_id(value: str) -> bool:
    return bool(_VALID_ID.match(value))


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str) -> contextvars.Token[str]:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str]) -> None:
    _request_id.reset(token)


class RequestIdMiddleware:
    """Take X-Request-ID from the request (or make one) and return it on every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True


class SecurityHeadersMiddleware:
    """Headers Django does not set itself."""

    CSP = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-eval'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Plotly needs eval for some chart types; inline scripts are not allowed.
        response.setdefault("Content-Security-Policy", self.CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.path.startswith("/api/"):
            response.setdefault("Cache-Control", "no-store")
        return response


class DatabaseUnavailableMiddleware:
    """Answer 503 (with Retry-After) when the database connection is lost.

    The request's transaction (ATOMIC requests or service-level atomic blocks)
    has been rolled back by then, so nothing is half-written.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError) or (
            isinstance(exception, DatabaseError) and "connection" in str(exception).lower()
        ):
            logger.error("database unavailable: %s", exception.__class__.__name__)
            # imported here: the logging config loads this module before DRF can be imported
            from controlplane.api.errors import problem_response

            response = problem_response(503, "database unavailable, retry later")
            response["Retry-After"] = "5"
            return response
        return None


class RefuseNulMiddleware:
    """400 for a NUL character in the path or the query string.

    PostgreSQL refuses NUL in text, so such a value would fail as a 500 wherever it reaches a
    query; bodies are checked by the API parsers (controlplane.api.parsers)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = ""
        if "\x00" in request.path:
            where = "path"
        else:
            for key, values in request.GET.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    where = key.replace("\x00", "\\u0000")
                    break
        if not where:
            return self.get_response(request)
        message = "must not contain the NUL character (%00)"
        if request.path.startswith("/api/"):
            from controlplane.api.errors import problem_response

            return problem_response(400, "invalid input", [{"path": where, "message": message}])
        return HttpResponse(f"{where}: {message}\n", status=400, content_type="text/plain; charset=utf-8")
