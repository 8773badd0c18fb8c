"""Reports API: thin adapters over slo.reports services and selectors.

READ (viewer): list, detail, CSV of reports; schedules. WRITE: generating a report on demand
(operator); creating, changing and deleting schedules (admin).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models.fields.json import KeyTransform
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.body import json_object_body
from controlplane.filters import UtcIsoDateTimeFilter
from controlplane.roles import ADMIN, OPERATOR, VIEWER
from slo.models.reports import PERIOD_UNITS, SCOPE_KINDS, TRIGGERS, Report, ReportSchedule
from slo.reports import selectors, services
from slo.reports.render import report_csv, report_url

# ----------------------------------------------------------------------------- serializers


class ReportSerializer(serializers.ModelSerializer):
    schedule = serializers.IntegerField(source="schedule_ref", read_only=True, allow_null=True)
    summary = serializers.JSONField(
        read_only=True, help_text="counts: SLOs met/missed, alert episodes, releases, cost"
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "scope_kind",
            "scope_value",
            "period",
            "period_label",
            "time_zone",
            "period_start",
            "period_end",
            "generated_at",
            "trigger",
            "requested_by_name",
            "schedule",
            "schema_version",
            "numbers_sha256",
            "summary",
            "url",
        ]
        read_only_fields = fields

    def get_url(self, obj: Report) -> str:
        """The report's page in the dashboard."""
        return report_url(obj)


class ReportDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    recipients = serializers.IntegerField(help_text="how many addresses")
    attempts = serializers.IntegerField()
    sent_at = serializers.DateTimeField(allow_null=True)


class ReportDetailSerializer(ReportSerializer):
    numbers = serializers.JSONField(read_only=True, help_text="the snapshot; schema in docs/reports.md")
    deliveries = serializers.SerializerMethodField()

    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "numbers", "deliveries"]
        read_only_fields = fields

    @extend_schema_field(ReportDeliverySerializer(many=True))
    def get_deliveries(self, obj: Report) -> list[dict[str, Any]]:
        return [
            {
                "id": d.pk,
                "state": d.state,
                "recipients": len(d.recipients),
                "attempts": d.attempts,
                "sent_at": d.sent_at,
            }
            for d in selectors.report_deliveries(report=obj)
        ]


GenerateRequest = inline_serializer(
    name="ReportGenerateRequest",
    fields={
        "service": serializers.CharField(required=False, help_text="one service by name, or"),
        "team": serializers.CharField(required=False, help_text="every service this owner has"),
        "period": serializers.ChoiceField(choices=PERIOD_UNITS),
        "start": serializers.CharField(required=False, help_text='"previous" (default) or YYYY-MM-DD, local'),
        "time_zone": serializers.CharField(
            required=False, help_text="IANA zone; default the server's TIME_ZONE"
        ),
        "recipients": serializers.ListField(child=serializers.EmailField(), required=False),
    },
)


class CronSerializer(serializers.Serializer):
    minute = serializers.CharField()
    hour = serializers.CharField()
    day_of_week = serializers.CharField()
    day_of_month = serializers.CharField()


class ReportScheduleSerializer(serializers.ModelSerializer):
    cron = serializers.SerializerMethodField()

    class Meta:
        model = ReportSchedule
        fields = [
            "id",
            "name",
            "scope_kind",
            "scope_value",
            "period",
            "time_zone",
            "recipients",
            "enabled",
            "cron",
            "last_period_start",
            "created_by_name",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CronSerializer(allow_null=True))
    def get_cron(self, obj: ReportSchedule) -> dict[str, str] | None:
        """The beat crontab (in `time_zone`); admins may also edit it in the Django admin."""
        return services.schedule_doc(obj)["cron"]


ScheduleWrite = inline_serializer(
    name="ReportScheduleWrite",
    fields={
        "name": serializers.SlugField(),
        "service": serializers.CharField(required=False),
        "team": serializers.CharField(required=False),
        "period": serializers.ChoiceField(choices=PERIOD_UNITS),
        "time_zone": serializers.CharField(required=False),
        "recipients": serializers.ListField(child=serializers.EmailField(), required=False),
        "enabled": serializers.BooleanField(required=False),
        "cron": CronSerializer(required=False, allow_null=True),
    },
)

# ----------------------------------------------------------------------------- views


class ReportFilter(django_filters.FilterSet):
    since = UtcIsoDateTimeFilter(field_name="period_start", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="period_start", lookup_expr="lt")
    scope_kind = django_filters.ChoiceFilter(choices=[(k, k) for k in SCOPE_KINDS])
    period = django_filters.ChoiceFilter(choices=[(p, p) for p in PERIOD_UNITS])
    trigger = django_filters.ChoiceFilter(choices=[(t, t) for t in TRIGGERS])
    schedule = django_filters.NumberFilter(field_name="schedule_ref")

    class Meta:
        model = Report
        fields = [
            "scope_kind",
            "scope_value",
            "period",
            "period_label",
            "trigger",
            "schedule",
            "since",
            "until",
        ]


class ReportViewSet(viewsets.ReadOnlyModelViewSet):
    """Generated reports: immutable snapshots, newest period first. The list carries each report's
    summary; the detail carries every number."""

    filterset_class = ReportFilter
    ordering_fields = ["period_start", "generated_at"]
    read_role = VIEWER

    def get_queryset(self) -> Any:
        queryset = selectors.report_queryset()
        if self.action == "list":
            return queryset.defer("numbers").annotate(summary=KeyTransform("summary", "numbers"))
        return queryset.annotate(summary=KeyTransform("summary", "numbers"))

    def get_serializer_class(self) -> Any:
        return ReportSerializer if self.action == "list" else ReportDetailSerializer


class ReportCsvView(APIView):
    """Every figure of a report as CSV (tidy rows: section, service, subject, metric, value)."""

    read_role = VIEWER

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, pk: str) -> HttpResponse:
        report = selectors.report_get(report_id=pk)
        response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
        filename = f"report-{report.pk}-{report.scope_value}-{report.period_label}.csv".replace('"', "")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ReportGenerateView(APIView):
    """Generate a report now for a service or a team over a complete calendar week or month
    (`start`: "previous" or the local date it starts on), optionally emailing it."""

    read_role = OPERATOR
    write_role = OPERATOR

    @extend_schema(request=GenerateRequest, responses={201: ReportDetailSerializer})
    def post(self, request: Request) -> Response:
        report = services.report_generate(actor=request.user, data=json_object_body(request))
        report = (
            selectors.report_queryset().annotate(summary=KeyTransform("summary", "numbers")).get(pk=report.pk)
        )
        return Response(ReportDetailSerializer(report).data, status=201)


class ReportScheduleViewSet(viewsets.ModelViewSet):
    """Report schedules. Admins write; each one owns a django-celery-beat crontab entry."""

    serializer_class = ReportScheduleSerializer
    filterset_fields = ["scope_kind", "scope_value", "period", "enabled"]
    read_role = VIEWER
    write_role = ADMIN

    def get_queryset(self) -> Any:
        return selectors.report_schedule_queryset()

    @extend_schema(request=ScheduleWrite, responses={201: ReportScheduleSerializer})
    def create(self, request: Request) -> Response:
        schedule = services.report_schedule_save(actor=request.user, data=json_object_body(request))
        return Response(ReportScheduleSerializer(schedule).data, status=201)

    @extend_schema(request=ScheduleWrite, responses={200: ReportScheduleSerializer})
    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        schedule = services.report_schedule_save(
            actor=request.user, data=json_object_body(request), schedule=self.get_object()
        )
        return Response(ReportScheduleSerializer(schedule).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.report_schedule_delete(actor=request.user, schedule_id=self.get_object().pk)
        return Response(status=204)
