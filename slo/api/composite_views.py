"""Composite SLO API: thin adapters over `slo.composites` services and selectors."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.body import json_object_body
from controlplane.api.conditional import versioned_update_body, with_etag
from controlplane.errors import NotFound
from controlplane.roles import OPERATOR, VIEWER
from slo.composites import selectors, services
from slo.composites.spec import composite_spec_json_schema
from slo.models.composites import Composite, CompositeVersion


class CompositeSerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)

    class Meta:
        model = Composite
        fields = [
            "id",
            "service",
            "name",
            "aggregation",
            "objective",
            "version",
            "spec",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CompositeWriteSerializer(serializers.Serializer):
    """A composite SLO document (see GET /api/v1/composites/schema/) plus an optional change note."""

    name = serializers.CharField()
    service = serializers.CharField()
    aggregation = serializers.ChoiceField(choices=["weighted_average", "least_healthy"], required=False)
    objective = serializers.FloatField()
    window = serializers.DictField()
    members = serializers.ListField(child=serializers.DictField(), min_length=2, max_length=25)
    display_name = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    min_valid_events = serializers.IntegerField(required=False)
    alert_tiers = serializers.ListField(child=serializers.DictField(), required=False, allow_null=True)
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    note = serializers.CharField(required=False, allow_blank=True)
    parent_version = serializers.IntegerField(required=False)


class CompositeVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CompositeVersion
        fields = ["version", "spec", "author_name", "note", "restored_from", "created_at"]
        read_only_fields = fields


class CompositeRestoreSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    note = serializers.CharField(required=False, allow_blank=True)


class CompositeViewSet(viewsets.ModelViewSet):
    """Composite SLOs over 2 to 25 member SLOs. Each edit makes a new immutable version; DELETE archives."""

    serializer_class = CompositeSerializer
    filterset_fields = ["aggregation"]
    ordering_fields = ["name", "objective", "updated_at"]
    read_role = VIEWER
    write_role = OPERATOR

    def get_queryset(self) -> Any:
        return selectors.composite_queryset()

    def get_object(self) -> Composite:
        key = self.kwargs["pk"]
        composite = selectors.composite_get(composite_id=int(key)) if str(key).isdigit() else None
        if composite is None:
            raise NotFound("no such composite SLO")
        self.check_object_permissions(self.request, composite)
        return composite

    @extend_schema(request=CompositeWriteSerializer, responses={201: CompositeSerializer})
    def create(self, request: Request) -> Response:
        body = json_object_body(request)
        note = str(body.pop("note", "") or "")
        body.pop("parent_version", None)
        composite = services.composite_create(actor=request.user, data=body, note=note)
        return with_etag(Response(CompositeSerializer(composite).data, status=201), composite.version)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        composite = self.get_object()
        return with_etag(Response(CompositeSerializer(composite).data), composite.version)

    @extend_schema(request=CompositeWriteSerializer, responses={200: CompositeSerializer})
    def update(self, request: Request, pk: str | None = None, partial: bool = False) -> Response:
        current = self.get_object()
        body, note, parent = versioned_update_body(
            request, current_version=current.version, current_spec=current.spec, partial=partial
        )
        composite = services.composite_update(
            actor=request.user, composite_id=current.pk, data=body, note=note, parent_version=parent
        )
        return with_etag(Response(CompositeSerializer(composite).data), composite.version)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.composite_archive(actor=request.user, composite_id=self.get_object().pk)
        return Response(status=204)

    @extend_schema(responses={200: CompositeVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        composite = self.get_object()
        page = self.paginate_queryset(
            CompositeVersion.objects.filter(composite=composite).order_by("-version")
        )
        return self.get_paginated_response(CompositeVersionSerializer(page, many=True).data)

    @extend_schema(request=CompositeRestoreSerializer, responses={200: CompositeSerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        data = CompositeRestoreSerializer(data=json_object_body(request))
        data.is_valid(raise_exception=True)
        composite = services.composite_restore(
            actor=request.user,
            composite_id=self.get_object().pk,
            version=data.validated_data["version"],
            note=data.validated_data.get("note", ""),
        )
        return Response(CompositeSerializer(composite).data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        """The latest evaluation: budget, burn rate per window with every member's contribution,
        alert tiers, and the members without data."""
        document = selectors.composite_status_document(composite=self.get_object())
        if document is None:
            raise NotFound("this composite SLO has not been evaluated yet")
        return Response(document)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"], url_path="schema")
    def json_schema(self, request: Request) -> Response:
        """The JSON Schema of a composite SLO document."""
        return Response(composite_spec_json_schema())

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.ANY})
    @action(detail=True, methods=["get"], url_path="openslo")
    def openslo(self, request: Request, pk: str | None = None) -> HttpResponse:
        """This composite as an OpenSLO v1 composite SLO (with what v1 cannot say in annotations)."""
        from slo.composites.openslo import composite_openslo_text

        composite = self.get_object()
        response = HttpResponse(
            composite_openslo_text(composite), content_type="application/yaml; charset=utf-8"
        )
        response["Content-Disposition"] = (
            f'inline; filename="{composite.service.name}-{composite.name}.composite.openslo.yaml"'
        )
        return response
