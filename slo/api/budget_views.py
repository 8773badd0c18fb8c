"""Budget API views: thin adapters over slo.budget services and selectors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.body import json_object_body
from controlplane.errors import NotFound, ValidationFailed
from controlplane.filters import UtcIsoDateTimeFilter
from controlplane.roles import ADMIN, VIEWER, has_role
from slo.api.budget_serializers import (
    AlertEventSerializer,
    BudgetPolicySerializer,
    BudgetPolicyWriteSerializer,
    CostModelSerializer,
    CostModelWriteSerializer,
    CostRollupSerializer,
    NotificationChannelSerializer,
    NotificationChannelWriteSerializer,
    ServiceBudgetStatusSerializer,
    SloStatusSerializer,
    TimeseriesSerializer,
)
from slo.budget import selectors, services
from slo.models import Slo
from slo.models.budget import AlertEvent, AlertState, BudgetPolicy, CostModel, CostRollup, NotificationChannel
from slo.spec import SloSpec


def _slo(pk: str) -> Slo:
    slo = Slo.objects.select_related("service").filter(pk=int(pk) if str(pk).isdigit() else -1).first()
    if slo is None or slo.archived_at is not None:
        raise NotFound("no such SLO")
    return slo


def _instant(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))
    except ValueError:  # well formed but impossible, e.g. minute 60
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationFailed(
            "invalid input", problems=[{"path": name, "message": "ISO 8601 date-time with a zone"}]
        )
    return value


class SloStatusView(APIView):
    """The SLO's latest evaluation: budget, burn rates per window, alert tiers, data quality."""

    read_role = VIEWER

    @extend_schema(responses={200: SloStatusSerializer})
    def get(self, request: Request, pk: str) -> Response:
        slo = _slo(pk)
        status = selectors.slo_status_get(slo_id=slo.pk)
        if status is None or status.evaluated_at is None:
            raise NotFound("this SLO has not been evaluated yet")
        doc = selectors.slo_status_document(status=status, spec=SloSpec.model_validate(slo.spec))
        doc["alerts"] = {
            s.severity: {"firing": s.firing, "since": s.since}
            for s in AlertState.objects.filter(slo_id=slo.pk, kind="burn_rate")
        }
        return Response(SloStatusSerializer(doc).data)


class SloTimeseriesView(APIView):
    """Chart data: `sli` or `burn_rate` per bucket, or `budget_remaining` from the status history."""

    read_role = VIEWER

    @extend_schema(
        parameters=[
            OpenApiParameter("metric", str, enum=["sli", "burn_rate", "budget_remaining"], required=True),
            OpenApiParameter("resolution", str, enum=["minute", "hour"], required=False),
            OpenApiParameter("start", OpenApiTypes.DATETIME, required=False),
            OpenApiParameter("end", OpenApiTypes.DATETIME, required=False),
        ],
        responses={200: TimeseriesSerializer},
    )
    def get(self, request: Request, pk: str) -> Response:
        slo = _slo(pk)
        metric = request.query_params.get("metric", "")
        resolution = request.query_params.get("resolution", "minute")
        points = selectors.slo_timeseries(
            slo=slo,
            metric=metric,
            resolution=resolution,
            start=_instant(request, "start"),
            end=_instant(request, "end"),
        )
        data = {"slo": slo.pk, "metric": metric, "resolution": resolution, "points": points}
        return Response(TimeseriesSerializer(data).data)


def _rules_response(slos: list[Slo], filename: str) -> HttpResponse:
    """The rule file; SLOs whose metrics are not in Prometheus are listed, with the reason, in its
    header comment and counted in `X-Slos-Skipped`."""
    from slo.rules_export import slo_rule_file

    rules, problems = slo_rule_file(slos=slos)
    if rules is None:
        raise ValidationFailed("cannot express these SLOs as Prometheus rules", problems=problems)
    response = HttpResponse(rules.yaml(), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Slos-Skipped"] = str(len(rules.skipped))
    return response


class SloPrometheusRulesView(APIView):
    """A Prometheus rule file (recording + multi-window burn-rate alerts) for one SLO."""

    read_role = VIEWER

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.ANY})
    def get(self, request: Request, pk: str) -> HttpResponse:
        slo = _slo(pk)
        return _rules_response([slo], f"{slo.service.name}-{slo.name}.rules.yml")


class PrometheusRulesView(APIView):
    """A Prometheus rule file for every SLO, or one service's (`?service=`)."""

    read_role = VIEWER

    @extend_schema(
        parameters=[OpenApiParameter("service", str, required=False)],
        responses={(200, "application/yaml"): OpenApiTypes.ANY},
    )
    def get(self, request: Request) -> HttpResponse:
        slos = (
            Slo.objects.filter(archived_at__isnull=True)
            .select_related("service")
            .order_by("service__name", "name")
        )
        service = request.query_params.get("service")
        if service:
            slos = slos.filter(service__name=service)
        return _rules_response(list(slos), f"{service or 'slos'}.rules.yml")


class AlertEventFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__name")
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AlertEvent
        fields = ["service", "slo", "kind", "severity", "state", "since", "until"]


class AlertEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Alert history: every firing and resolved transition with its evidence."""

    serializer_class = AlertEventSerializer
    filterset_class = AlertEventFilter
    ordering_fields = ["at"]
    read_role = VIEWER

    def get_queryset(self) -> Any:
        return AlertEvent.objects.select_related("service", "slo").order_by("-at", "-id")


class NotificationChannelViewSet(viewsets.ModelViewSet):
    """Notification channels. Admins write; signing secrets are write-only."""

    queryset = NotificationChannel.objects.all()
    serializer_class = NotificationChannelSerializer
    filterset_fields = ["kind", "enabled"]
    read_role = VIEWER
    write_role = ADMIN

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "full_urls": has_role(self.request.user, ADMIN)}

    def _out(self, channel: NotificationChannel, status: int = 200) -> Response:
        return Response(
            NotificationChannelSerializer(channel, context=self.get_serializer_context()).data, status=status
        )

    @extend_schema(request=NotificationChannelWriteSerializer, responses={201: NotificationChannelSerializer})
    def create(self, request: Request) -> Response:
        return self._out(
            services.notification_channel_save(actor=request.user, data=json_object_body(request)), 201
        )

    @extend_schema(request=NotificationChannelWriteSerializer, responses={200: NotificationChannelSerializer})
    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        channel = services.notification_channel_save(
            actor=request.user, data=json_object_body(request), channel=self.get_object()
        )
        return self._out(channel)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.notification_channel_delete(actor=request.user, channel=self.get_object())
        return Response(status=204)


class BudgetPolicyViewSet(viewsets.ModelViewSet):
    """Error-budget policies per service (service null: the default for services without one)."""

    serializer_class = BudgetPolicySerializer
    read_role = VIEWER
    write_role = ADMIN
    filterset_fields = ["service__name"]

    def get_queryset(self) -> Any:
        return BudgetPolicy.objects.select_related("service").order_by("service__name")

    @extend_schema(request=BudgetPolicyWriteSerializer, responses={201: BudgetPolicySerializer})
    def create(self, request: Request) -> Response:
        policy = services.budget_policy_save(actor=request.user, data=json_object_body(request))
        return Response(BudgetPolicySerializer(policy).data, status=201)

    @extend_schema(request=BudgetPolicyWriteSerializer, responses={200: BudgetPolicySerializer})
    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        policy = services.budget_policy_save(
            actor=request.user, data=json_object_body(request), policy=self.get_object()
        )
        return Response(BudgetPolicySerializer(policy).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.budget_policy_delete(actor=request.user, policy=self.get_object())
        return Response(status=204)


class ServiceBudgetStatusView(APIView):
    """What release gates read: the service's budget state under its policy."""

    read_role = VIEWER

    @extend_schema(responses={200: ServiceBudgetStatusSerializer})
    def get(self, request: Request, name: str) -> Response:
        return Response(
            ServiceBudgetStatusSerializer(selectors.service_budget_status(service_name=name)).data
        )


class CostModelViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Versioned price lists. A change is a new version; versions are never edited."""

    queryset = CostModel.objects.select_related("author").order_by("-version")
    serializer_class = CostModelSerializer
    read_role = VIEWER
    write_role = ADMIN

    @extend_schema(request=CostModelWriteSerializer, responses={201: CostModelSerializer})
    def create(self, request: Request) -> Response:
        model = services.cost_model_create(actor=request.user, data=json_object_body(request))
        return Response(CostModelSerializer(model).data, status=201)


class CostRollupFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__name")
    start = UtcIsoDateTimeFilter(field_name="bucket_start", lookup_expr="gte")
    end = UtcIsoDateTimeFilter(field_name="bucket_start", lookup_expr="lt")
    resolution = django_filters.ChoiceFilter(choices=CostRollup.RESOLUTIONS)

    class Meta:
        model = CostRollup
        fields = ["service", "route", "resolution", "start", "end"]


class CostRollupViewSet(viewsets.ReadOnlyModelViewSet):
    """Cost per request, per 1,000 inferences by tier, per cache hit, savings and SLA checks."""

    serializer_class = CostRollupSerializer
    filterset_class = CostRollupFilter
    ordering_fields = ["bucket_start", "cost_usd"]
    read_role = VIEWER

    def get_queryset(self) -> Any:
        return CostRollup.objects.select_related("service").order_by("-bucket_start", "service_id", "route")
