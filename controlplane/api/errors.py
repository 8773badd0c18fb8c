"""One error shape for the whole API: RFC 9457 problem details (`application/problem+json`) with
our field paths as the `errors` extension member.

    {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "invalid SLO",
     "errors": [{"path": "sli.threshold_ms", "message": "..."}]}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from controlplane.errors import DomainError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(
    status: int, detail: str, errors: Iterable[dict[str, str]] = (), **extra: Any
) -> dict[str, Any]:
    """An RFC 9457 problem: `type` about:blank means the status says it all, so `title` is the
    status phrase; `detail` is one readable line and `errors` each field path with its reason."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "errors": list(errors),
    }
    body.update(extra)
    return body


def problem_response(
    status: int, detail: str, errors: Iterable[dict[str, str]] = (), **extra: Any
) -> JsonResponse:
    """The same problem for code outside DRF (middleware, plain Django views)."""
    return JsonResponse(
        problem_body(status, detail, errors, **extra), status=status, content_type=PROBLEM_CONTENT_TYPE
    )


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = "" if key in ("non_field_errors", "detail") else str(key)
            path = f"{prefix}.{key}" if prefix and key else (prefix or key)
            out.extend(_flatten(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out.extend({"path": prefix, "message": str(item)} for item in detail)
        else:
            for index, item in enumerate(detail):
                out.extend(_flatten(item, f"{prefix}[{index}]"))
    else:
        out.append({"path": prefix, "message": str(detail)})
    return out


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        errors = exc.problems or [{"path": "", "message": exc.message}]
        return Response(
            problem_body(exc.status, exc.message, errors, **exc.extra),
            status=exc.status,
            content_type=PROBLEM_CONTENT_TYPE,
        )
    if isinstance(exc, OperationalError | InterfaceError):
        logger.error("database unavailable during API call: %s", exc.__class__.__name__)
        return Response(
            problem_body(503, "database unavailable, retry later"),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
            content_type=PROBLEM_CONTENT_TYPE,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = problem_body(response.status_code, "invalid input", _flatten(exc.detail))
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = problem_body(response.status_code, str(detail))
    response.content_type = PROBLEM_CONTENT_TYPE
    return response
