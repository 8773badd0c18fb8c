"""Discovery on a telemetry source: metrics, label values and histogram bucket boundaries."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import NotFound, ValidationFailed
from controlplane.roles import VIEWER
from slo.models.telemetry import TelemetrySource
from slo.telemetry.discovery import METRIC_NAME, DiscoveryFailed, source_discovery


class TelemetrySourceDiscoveryView(APIView):
    """Without `metric`: the source's metric names. With it: label names and values, and for a
    histogram its bucket boundaries (seconds). 502 when the source does not answer."""

    read_role = VIEWER

    @extend_schema(
        parameters=[
            OpenApiParameter("metric", str, required=False, description="a metric or histogram name")
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, source_id: int) -> Response:
        source = TelemetrySource.objects.filter(pk=source_id).first()
        if source is None:
            raise NotFound("no such telemetry source")
        metric = request.query_params.get("metric") or None
        if metric is not None and not METRIC_NAME.fullmatch(metric):
            raise ValidationFailed(
                "invalid input", problems=[{"path": "metric", "message": "not a metric name"}]
            )
        try:
            doc = source_discovery(source, metric)
        except DiscoveryFailed as exc:
            return Response({"detail": f"source {source.name} did not answer: {exc}"}, status=502)
        return Response({"source": source.pk, **doc})
