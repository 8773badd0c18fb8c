from __future__ import annotations

from typing import Any

import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.body import PlainTextParser, json_object_body
from controlplane.api.conditional import versioned_update_body, with_etag
from controlplane.api.parsers import MultiPartParser
from controlplane.errors import NotFound, ValidationFailed
from controlplane.roles import OPERATOR, VIEWER
from slo import selectors, services
from slo.api.serializers import (
    DiffSerializer,
    ServiceSerializer,
    ServiceWriteSerializer,
    SloRestoreSerializer,
    SloSerializer,
    SloVersionSerializer,
    SloWriteSerializer,
)
from slo.models import Service, Slo, SloVersion
from slo.spec import slo_spec_json_schema
from slo.telemetry.discovery import slo_threshold_warnings


class ServiceViewSet(viewsets.ModelViewSet):
    """Inference services. Operators create and edit; everyone with a role reads."""

    queryset = Service.objects.all()
    serializer_class = ServiceSerializer
    lookup_value_regex = r"[^/]+"
    filterset_fields = ["service_class", "owner"]
    ordering_fields = ["name", "created_at"]
    read_role = VIEWER
    write_role = OPERATOR

    def get_object(self) -> Service:
        key = self.kwargs["pk"]
        service = (
            Service.objects.filter(pk=int(key)) if key.isdigit() else Service.objects.filter(name=key)
        ).first()
        if service is None:
            raise NotFound("no such service")
        self.check_object_permissions(self.request, service)
        return service

    @extend_schema(request=ServiceWriteSerializer, responses={201: ServiceSerializer})
    def create(self, request: Request) -> Response:
        service = services.service_create(actor=request.user, data=json_object_body(request))
        return Response(ServiceSerializer(service).data, status=201)

    @extend_schema(request=ServiceWriteSerializer, responses={200: ServiceSerializer})
    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        service = services.service_update(
            actor=request.user, service=self.get_object(), data=json_object_body(request)
        )
        return Response(ServiceSerializer(service).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.service_delete(actor=request.user, service=self.get_object())
        return Response(status=204)


class SloFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__name")
    service_class = django_filters.CharFilter(field_name="service__service_class")

    class Meta:
        model = Slo
        fields = ["service", "tier", "sli_kind", "service_class"]


class SloViewSet(viewsets.ModelViewSet):
    """SLOs. Each edit makes a new immutable version; DELETE archives."""

    serializer_class = SloSerializer
    filterset_class = SloFilter
    ordering_fields = ["name", "objective", "updated_at"]
    read_role = VIEWER
    write_role = OPERATOR

    def get_queryset(self) -> Any:
        return Slo.objects.filter(archived_at__isnull=True).select_related("service")

    @extend_schema(request=SloWriteSerializer, responses={201: SloSerializer})
    def create(self, request: Request) -> Response:
        body = json_object_body(request)
        note = str(body.pop("note", "") or "")
        body.pop("parent_version", None)
        slo = services.slo_create(actor=request.user, data=body, note=note)
        # Accepted, but said now rather than as a silent no data later (see slo.telemetry.discovery).
        warnings = slo_threshold_warnings(slo)
        return with_etag(Response({**SloSerializer(slo).data, "warnings": warnings}, status=201), slo.version)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        slo = self.get_object()
        return with_etag(Response(SloSerializer(slo).data), slo.version)

    @extend_schema(request=SloWriteSerializer, responses={200: SloSerializer})
    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        current = self.get_object()
        body, note, parent = versioned_update_body(
            request, current_version=current.version, current_spec=current.spec, partial=partial
        )
        slo = services.slo_update(
            actor=request.user, slo_id=current.pk, data=body, note=note, parent_version=parent
        )
        return with_etag(Response(SloSerializer(slo).data), slo.version)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.slo_archive(actor=request.user, slo_id=self.get_object().pk)
        return Response(status=204)

    @extend_schema(responses={200: SloVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        slo = self.get_object()
        page = self.paginate_queryset(SloVersion.objects.filter(slo=slo).order_by("-version"))
        return self.get_paginated_response(SloVersionSerializer(page, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True, description="older version"),
            OpenApiParameter("to", int, required=False, description="newer version (default: current)"),
        ],
        responses={200: DiffSerializer},
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: str | None = None) -> Response:
        slo = self.get_object()
        try:
            from_version = int(request.query_params.get("from", ""))
            to_version = int(request.query_params.get("to", slo.version))
        except ValueError:
            raise ValidationFailed(
                "invalid input", problems=[{"path": "from", "message": "from and to must be version numbers"}]
            ) from None
        specs = selectors.slo_version_specs(slo_id=slo.pk, versions=[from_version, to_version])
        for version in (from_version, to_version):
            if version not in specs:
                raise NotFound(f"SLO {slo.pk} has no version {version}")
        from slo.diff import diff_documents

        changes = [change.as_dict() for change in diff_documents(specs[from_version], specs[to_version])]
        return Response({"from_version": from_version, "to_version": to_version, "changes": changes})

    @extend_schema(request=SloRestoreSerializer, responses={200: SloSerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        data = SloRestoreSerializer(data=json_object_body(request))
        data.is_valid(raise_exception=True)
        slo = services.slo_restore(
            actor=request.user,
            slo_id=self.get_object().pk,
            version=data.validated_data["version"],
            note=data.validated_data.get("note", ""),
        )
        return Response(SloSerializer(slo).data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"], url_path="schema")
    def json_schema(self, request: Request) -> Response:
        """The JSON Schema of an SLO document."""
        return Response(slo_spec_json_schema())

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.ANY})
    @action(detail=True, methods=["get"], url_path="openslo")
    def openslo(self, request: Request, pk: str | None = None) -> HttpResponse:
        """This SLO as OpenSLO v1 YAML."""
        from slo.interop import openslo_export_text

        slo = self.get_object()
        return _yaml_response(openslo_export_text(slos=[slo]), f"{slo.service.name}-{slo.name}.openslo.yaml")


def _yaml_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


class OpenSloImportView(APIView):
    """Import OpenSLO v1 YAML (multi-document): services and SLOs, all or nothing.

    Send the YAML as the body (Content-Type application/yaml or text/plain) or as a
    multipart file named `file`. `?dry_run=true` reports without storing. Anything
    we cannot express is listed under `unsupported`, never dropped silently.
    """

    read_role = OPERATOR
    write_role = OPERATOR
    parser_classes = [MultiPartParser, PlainTextParser]

    @extend_schema(
        request={"application/yaml": OpenApiTypes.STR, "text/plain": OpenApiTypes.STR},
        parameters=[OpenApiParameter("dry_run", bool, required=False)],
        responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        from slo.interop import openslo_import

        text = _uploaded_text(request)
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        result = openslo_import(actor=request.user, text=text, dry_run=dry_run)
        return Response(result, status=200 if dry_run else 201)


class OpenSloExportView(APIView):
    """Every SLO (optionally one service's) as OpenSLO v1 YAML."""

    read_role = VIEWER

    @extend_schema(
        parameters=[OpenApiParameter("service", str, required=False)],
        responses={(200, "application/yaml"): OpenApiTypes.ANY},
    )
    def get(self, request: Request) -> HttpResponse:
        from slo.interop import openslo_export_text

        slos = Slo.objects.filter(archived_at__isnull=True).select_related("service")
        service = request.query_params.get("service")
        if service:
            slos = slos.filter(service__name=service)
        return _yaml_response(openslo_export_text(slos=list(slos)), "slos.openslo.yaml")


def _uploaded_text(request: Request) -> str:
    upload = request.FILES.get("file") if hasattr(request, "FILES") else None
    if upload is not None:
        raw = upload.read()
    else:
        raw = request.data
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed(
                "invalid input", problems=[{"path": "", "message": "YAML must be UTF-8"}]
            ) from None
    if isinstance(raw, str):
        return raw
    raise ValidationFailed(
        "invalid input", problems=[{"path": "", "message": "send OpenSLO YAML as the body or as file"}]
    )
