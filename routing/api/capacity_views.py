"""Capacity recommendations (`GET /api/v1/capacity/recommendations/`), the autoscaler metric in the
shape KEDA's `metrics-api` scaler reads (`GET /api/v1/capacity/scaler/`), a gateway's health
history (`GET /api/v1/gateways/<id>/health/`) and budget responses (`/api/v1/budget-responses/`).
docs/capacity.md."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.body import json_object_body
from controlplane.errors import NotFound, ValidationFailed
from controlplane.roles import APPROVER, VIEWER
from routing.capacity import selectors
from routing.capacity.responses import budget_response_approve, budget_response_dismiss
from routing.models.capacity import ACTIVE, CLEARED
from routing.models.fleet import Gateway
from routing.models.responses import RESPONSE_STATES, BudgetResponse
from slo.spec import TIERS

POOL_FILTERS = [
    OpenApiParameter("tier", OpenApiTypes.STR, enum=list(TIERS)),
    OpenApiParameter("region", OpenApiTypes.STR),
    OpenApiParameter("pool", OpenApiTypes.STR, description="the gateways' `pool` label ('' for none)"),
]


class _PoolQuery(serializers.Serializer):
    tier = serializers.ChoiceField(choices=list(TIERS), required=False)
    region = serializers.CharField(max_length=63, required=False, allow_blank=True)
    pool = serializers.CharField(max_length=63, required=False, allow_blank=True)


class RecommendationQuery(_PoolQuery):
    service = serializers.SlugField(max_length=63, required=False)
    state = serializers.ChoiceField(choices=[ACTIVE, CLEARED, "all"], required=False, default=ACTIVE)


class ScalerQuery(_PoolQuery):
    service = serializers.SlugField(max_length=63)


class HealthQuery(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "must be after since"})
        return attrs


def _parse(serializer_class: type[serializers.Serializer], params: Any) -> dict[str, Any]:
    fields = serializer_class().fields
    query = serializer_class(data={k: params.get(k) for k in fields if k in params})
    if not query.is_valid():
        raise ValidationFailed(
            "invalid query",
            problems=[
                {"path": name, "message": " ".join(str(m) for m in messages)}
                for name, messages in query.errors.items()
            ],
        )
    return dict(query.validated_data)


class RecommendationListView(GenericAPIView):
    """Scaling recommendations, newest first (default: the active ones)."""

    read_role = VIEWER
    write_role = None

    @extend_schema(
        parameters=[
            OpenApiParameter("service", OpenApiTypes.STR),
            OpenApiParameter("state", OpenApiTypes.STR, enum=[ACTIVE, CLEARED, "all"]),
            *POOL_FILTERS,
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiResponse(description="invalid query")},
    )
    def get(self, request: Request) -> Response:
        """Each row: the pool, the action (scale_out, scale_in, offload_to_cloud, shift_to_nearby,
        wake_dormant) and amount, the reason, and the evidence (windows and rules) that decided."""
        query = _parse(RecommendationQuery, request.query_params)
        state = query.pop("state")
        queryset = selectors.recommendation_queryset(state=None if state == "all" else state, **query)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([selectors.recommendation_answer(r) for r in page])


class ScalerMetricView(GenericAPIView):
    """The autoscaler's metric for one service (optionally one tier, region and pool)."""

    read_role = VIEWER
    write_role = None
    pagination_class = None

    @extend_schema(
        parameters=[OpenApiParameter("service", OpenApiTypes.STR, required=True), *POOL_FILTERS],
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiResponse(description="invalid query"),
            404: OpenApiResponse(description="no such service"),
        },
    )
    def get(self, request: Request) -> Response:
        """For KEDA's `metrics-api` scaler: `valueLocation: desiredWorkers` with `targetValue: "1"`
        makes the scaled workload run the recommended number of workers; `offloadWorkers` is the
        load (in workers) edge pools want moved to the cloud. Figures from the newest evaluation."""
        query = _parse(ScalerQuery, request.query_params)
        return Response(
            selectors.scaler_metric(
                service=query["service"],
                tier=query.get("tier"),
                region=query.get("region"),
                pool=query.get("pool"),
                now=timezone.now(),
            )
        )


class GatewayHealthView(GenericAPIView):
    """One gateway's health history (one point per heartbeat), oldest first."""

    read_role = VIEWER
    write_role = None
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="default: 6 hours ago"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="default: now"),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiResponse(description="invalid query")},
    )
    def get(self, request: Request, pk: str) -> Response:
        """Temperature, memory headroom, backhaul, queue, workers, request age, accelerator use and
        p95 as the gateway reported them; missing measurements are null."""
        query = _parse(HealthQuery, request.query_params)
        gateway = Gateway.objects.filter(pk=int(pk)).values_list("pk", "name").first()
        if gateway is None:
            raise NotFound("no such gateway")
        until = query.get("until") or timezone.now()
        since = query.get("since") or until - selectors.default_health_span()
        if until - since > timedelta(days=7):
            raise ValidationFailed("invalid query", problems=[{"path": "since", "message": "at most 7 days"}])
        points = selectors.gateway_health_history(gateway_id=gateway[0], since=since, until=until)
        return Response(
            {"gateway": gateway[0], "name": gateway[1], "since": since, "until": until, "points": points}
        )


class BudgetResponseQuery(serializers.Serializer):
    service = serializers.SlugField(max_length=63, required=False)
    state = serializers.ChoiceField(choices=[*RESPONSE_STATES, "all"], required=False, default="all")


class DecisionBody(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


def budget_response_answer(response: BudgetResponse) -> dict[str, Any]:
    return {
        "id": response.pk,
        "service": response.service.name,
        "kind": response.kind,
        "state": response.state,
        "summary": response.summary,
        "trigger": response.trigger,
        "routing_policy": {
            "line": response.line_id,
            "baseline_version": response.baseline_version,
            "version": response.version,
        },
        "hold_hours": response.hold_hours,
        "simulation": response.simulation,
        "release": response.release_id,
        "created_at": response.created_at,
        "decided_at": response.decided_at,
        "decided_by": response.decided_by_name,
        "comment": response.comment,
    }


class BudgetResponseListView(GenericAPIView):
    """Changes proposed because a service burns fast, newest first."""

    read_role = VIEWER
    write_role = None

    @extend_schema(
        parameters=[
            OpenApiParameter("service", OpenApiTypes.STR),
            OpenApiParameter("state", OpenApiTypes.STR, enum=[*RESPONSE_STATES, "all"]),
            OpenApiParameter("limit", OpenApiTypes.INT),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiResponse(description="invalid query")},
    )
    def get(self, request: Request) -> Response:
        """Each proposal: what it changes, why (the burn alert), and the simulation of its effect."""
        query = _parse(BudgetResponseQuery, request.query_params)
        queryset = BudgetResponse.objects.select_related("service")
        if query.get("service"):
            queryset = queryset.filter(service__name=query["service"])
        if query["state"] != "all":
            queryset = queryset.filter(state=query["state"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([budget_response_answer(r) for r in page])


class _BudgetResponseDecision(GenericAPIView):
    read_role = None
    write_role = APPROVER
    pagination_class = None

    def decide(self, request: Request, pk: str, comment: str) -> Any:
        raise NotImplementedError

    @extend_schema(
        request=DecisionBody,
        responses={
            200: OpenApiTypes.OBJECT,
            404: OpenApiResponse(description="no such proposal"),
            409: OpenApiResponse(description="already decided"),
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        raw = json_object_body(request)
        if not isinstance(raw.get("comment", ""), str):  # DRF would turn a number into text
            raise ValidationFailed("invalid input", problems=[{"path": "comment", "message": "a string"}])
        body = _parse(DecisionBody, raw)
        response = self.decide(request, pk, body["comment"])
        return Response(budget_response_answer(response))


class BudgetResponseApproveView(_BudgetResponseDecision):
    """Approve: the proposed version is approved and a draft hotfix release of it is written."""

    def decide(self, request: Request, pk: str, comment: str) -> Any:
        return budget_response_approve(actor=request.user, response_id=int(pk), comment=comment)


class BudgetResponseDismissView(_BudgetResponseDecision):
    """Dismiss: the proposed draft version is retired."""

    def decide(self, request: Request, pk: str, comment: str) -> Any:
        return budget_response_dismiss(actor=request.user, response_id=int(pk), comment=comment)
