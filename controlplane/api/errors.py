"""One error shape for the whole API.

    {"errors": [{"path": "sli.threshold_ms", "message": "..."}], "detail": "..."}
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from controlplane.errors import DomainError

logger = logging.getLogger(__name__)


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
        body: dict[str, Any] = {"detail": exc.message, "errors": exc.problems or [{"path": "", "message": exc.message}]}
        body.update(exc.extra)
        return Response(body, status=exc.status)
    if isinstance(exc, OperationalError | InterfaceError):
        logger.error("database unavailable during API call: %s", exc.__class__.__name__)
        return Response(
            {"detail": "database unavailable, retry later", "errors": []},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": "invalid input", "errors": _flatten(exc.detail)}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = {"detail": str(detail), "errors": []}
    return response
