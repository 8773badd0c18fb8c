"""Telemetry API: Prometheus sources (operators write, viewers read) and per-minute SLI data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.body import json_object_body
from controlplane.errors import NotFound, ValidationFailed
from controlplane.roles import OPERATOR, VIEWER
from slo.api.telemetry_serializers import (
    SloMinutesSerializer,
    TelemetrySourceSerializer,
    TelemetrySourceWriteSerializer,
)
from slo.models import Slo
from slo.models.telemetry import TelemetrySource
from slo.telemetry import selectors, sources

# The per-minute endpoint is for charts and debugging; longer ranges belong to the hourly rollups.
MAX_MINUTES_RANGE = timedelta(days=3)


class TelemetrySourceFilter(django_filters.FilterSet):
    class Meta:
        model = TelemetrySource
        fields = ["tier", "region", "enabled", "auth_kind"]


class TelemetrySourceViewSet(viewsets.ModelViewSet):
    """Prometheus endpoints the control plane pulls SLIs from, with their health and statistics."""

    queryset = TelemetrySource.objects.all()
    serializer_class = TelemetrySourceSerializer
    filterset_class = TelemetrySourceFilter
    ordering_fields = ["name", "tier", "last_success_at", "consecutive_failures"]
    read_role = VIEWER
    write_role = OPERATOR

    @extend_schema(request=TelemetrySourceWriteSerializer, responses={201: TelemetrySourceSerializer})
    def create(self, request: Request) -> Response:
        source = sources.telemetry_source_create(actor=request.user, data=json_object_body(request))
        return Response(TelemetrySourceSerializer(source).data, status=201)

    @extend_schema(request=TelemetrySourceWriteSerializer, responses={200: TelemetrySourceSerializer})
    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        source = sources.telemetry_source_update(
            actor=request.user, source_id=self.get_object().pk, data=json_object_body(request)
        )
        return Response(TelemetrySourceSerializer(source).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        sources.telemetry_source_delete(actor=request.user, source_id=self.get_object().pk)
        return Response(status=204)


def _instant(request: Request, name: str, default: datetime) -> datetime:
    text = request.query_params.get(name)
    if not text:
        return default
    try:
        # a literal "+" in a query string arrives as a space
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise ValidationFailed(
            "invalid input", problems=[{"path": name, "message": "must be an ISO 8601 timestamp"}]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class SloMinutesView(APIView):
    """Per-minute good/valid/present of one SLO, summed over sources (charts and debugging).

    `start`/`end` are ISO 8601 (UTC if no offset), floored to minutes; default: the last hour. At
    most 3 days. A missing minute has `present: false` and null counts: it is not zero traffic.
    """

    read_role = VIEWER

    @extend_schema(
        parameters=[
            OpenApiParameter("start", str, required=False, description="ISO 8601; default end - 1 hour"),
            OpenApiParameter("end", str, required=False, description="ISO 8601, exclusive; default now"),
        ],
        responses={200: SloMinutesSerializer},
    )
    def get(self, request: Request, slo_id: int) -> Response:
        if not Slo.objects.filter(pk=slo_id).exists():
            raise NotFound("no such SLO")
        end = _instant(request, "end", timezone.now())
        start = _instant(request, "start", end - timedelta(hours=1))
        if end <= start:
            raise ValidationFailed(
                "invalid input", problems=[{"path": "end", "message": "must be after start"}]
            )
        if end - start > MAX_MINUTES_RANGE:
            raise ValidationFailed(
                "invalid input",
                problems=[{"path": "start", "message": "at most 3 days of minutes; use hourly data"}],
            )
        data = selectors.sli_minutes([slo_id], start, end)
        minutes: list[dict[str, Any]] = [
            {
                "minute": minute,
                "good": int(data.good[0, i]) if data.present[0, i] else None,
                "valid": int(data.valid[0, i]) if data.present[0, i] else None,
                "present": bool(data.present[0, i]),
            }
            for i, minute in enumerate(data.minutes())
        ]
        body = {
            "slo": slo_id,
            "start": data.start,
            "end": data.start + timedelta(minutes=data.n_minutes),
            "present_minutes": int(data.present.sum()),
            "minutes": minutes,
        }
        return Response(SloMinutesSerializer(body).data)
