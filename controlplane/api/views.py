from __future__ import annotations

from typing import Any

import django_filters
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane import services
from controlplane.api.errors import problem_response
from controlplane.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    AuditEventSerializer,
)
from controlplane.filters import UtcIsoDateTimeFilter
from controlplane.models import ApiToken, AuditEvent
from controlplane.permissions import AnyRole
from controlplane.roles import ADMIN, VIEWER, has_role, user_roles


class ApiTokenViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Your personal API tokens (admins see everyone's). DELETE revokes."""

    serializer_class = ApiTokenSerializer
    lookup_value_regex = r"[0-9]+"
    read_role = VIEWER
    write_role = VIEWER

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        queryset = ApiToken.objects.select_related("user")
        if not has_role(self.request.user, ADMIN):
            queryset = queryset.filter(user=self.request.user)
        return queryset

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = services.api_token_create(
            actor=request.user,
            user=request.user,
            name=data.validated_data["name"],
            expires_at=data.validated_data.get("expires_at"),
        )
        token.token = raw
        return Response(ApiTokenCreatedSerializer(token).data, status=201)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        owner = None if has_role(request.user, ADMIN) else request.user
        services.api_token_revoke(actor=request.user, token_id=int(pk or 0), owner=owner)
        return Response(status=204)


class AuditEventFilter(django_filters.FilterSet):
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["object_type", "object_id", "action", "actor_name", "request_id"]


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit log: every change with actor, JSON before/after and request id. Read-only."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    lookup_value_regex = r"[0-9]+"
    filterset_class = AuditEventFilter
    ordering_fields = ["at", "id"]
    read_role = VIEWER


@extend_schema(responses={200: dict})
@api_view(["GET"])
@permission_classes([AnyRole])
def me(request: Request) -> Response:
    """Who am I, and which roles do I hold."""
    return Response({"username": request.user.get_username(), "roles": sorted(user_roles(request.user))})


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: database and broker reachability. Reveals nothing else."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        checks["database"] = f"error: {exc.__class__.__name__}"
    checks["broker"] = _broker_status()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503
    )


def _broker_status() -> str:
    from controlplane.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc.__class__.__name__}"


@csrf_exempt  # it changes nothing; a CSRF refusal would answer HTML for an unknown path
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any /api/ path no route matches (e.g. `/api/v1/tokens/abc/` where an id is a number): the
    API's JSON error envelope, not the HTML page browsers get."""
    return problem_response(404, "not found", [{"path": "", "message": f"no API endpoint at {request.path}"}])
