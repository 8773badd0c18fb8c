"""Per-request decision records: the gateway push (`POST /api/v1/gateways/<id>/decisions/`) and
the search (`GET /api/v1/decisions/`). Format and meaning: docs/decisions.md."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from controlplane.api.body import json_object_body
from controlplane.errors import ValidationFailed
from controlplane.roles import VIEWER
from routing.api.fleet_views import _GatewayFacing
from routing.fleet.decision_format import NAME_RE, REQUEST_ID_RE
from routing.fleet.decision_selectors import decision_record_queryset, decision_records_answer
from routing.fleet.decisions import Registration, decision_records_ingest


class GatewayDecisionsView(_GatewayFacing):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "ingest"

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            202: OpenApiTypes.OBJECT,
            400: OpenApiResponse(description="invalid batch: every problem with its path"),
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        """A sample of this gateway's per-request decision records (docs/decisions.md). Filed under
        the gateway's registered service, tier and region. Rate-limited with the telemetry push."""
        payload = json_object_body(request)
        service, tier, region = self.registration(pk)
        result = decision_records_ingest(
            registration=Registration(gateway_id=int(pk), service=service, tier=tier, region=region),
            payload=payload,
        )
        return Response({"accepted": True, "result": asdict(result)}, status=202)


class DecisionQuery(serializers.Serializer):
    """The search's filters; any may be combined."""

    request_id = serializers.RegexField(REQUEST_ID_RE, required=False)
    gateway = serializers.IntegerField(min_value=1, required=False)
    service = serializers.SlugField(max_length=63, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    rule = serializers.CharField(max_length=128, required=False)
    route = serializers.RegexField(NAME_RE, required=False)


def _query(params: Any) -> dict[str, Any]:
    query = DecisionQuery(data={k: params.get(k) for k in DecisionQuery().fields if k in params})
    if not query.is_valid():
        raise ValidationFailed(
            "invalid filter",
            problems=[
                {"path": name, "message": " ".join(str(m) for m in messages)}
                for name, messages in query.errors.items()
            ],
        )
    return dict(query.validated_data)


class DecisionListView(GenericAPIView):
    """Decision records, newest first, each joined to the SLI figures of its minute."""

    read_role = VIEWER
    write_role = None

    @extend_schema(
        parameters=[
            OpenApiParameter("request_id", OpenApiTypes.STR),
            OpenApiParameter("gateway", OpenApiTypes.INT),
            OpenApiParameter("service", OpenApiTypes.STR),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="inclusive"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="exclusive"),
            OpenApiParameter("rule", OpenApiTypes.STR),
            OpenApiParameter("route", OpenApiTypes.STR),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiResponse(description="invalid filter")},
    )
    def get(self, request: Request) -> Response:
        """Search by request id (a gateway logs the id of each request it samples) or by gateway,
        service, time, rule and route. Paginated (`limit`, `offset`)."""
        query = _query(request.query_params)
        queryset = decision_record_queryset(
            request_id=query.get("request_id"),
            gateway_id=query.get("gateway"),
            service=query.get("service"),
            since=query.get("since"),
            until=query.get("until"),
            rule=query.get("rule"),
            route=query.get("route"),
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(decision_records_answer(page))
