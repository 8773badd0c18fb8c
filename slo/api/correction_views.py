"""Status corrections (maintenance windows): CRUD, approve and reject.

Operators create, edit and delete; a correction that would hide an ongoing page waits for an
approver (`approve` / `reject`, approvers only, never the version's author); viewers read.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.body import json_object_body
from controlplane.errors import NotFound
from controlplane.roles import APPROVER, OPERATOR, VIEWER
from slo.corrections import services
from slo.models.corrections import Correction, CorrectionVersion


class CorrectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Correction
        fields = [
            "id",
            "spec",
            "version",
            "state",
            "effective_spec",
            "effective_version",
            "author_name",
            "approval_reason",
            "approved_by_name",
            "applied_at",
            "created_at",
            "updated_at",
            "deleted_at",
        ]
        read_only_fields = fields


class CorrectionVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CorrectionVersion
        fields = [
            "version",
            "spec",
            "author_name",
            "note",
            "approval_reason",
            "approved_by_name",
            "approved_at",
            "created_at",
        ]
        read_only_fields = fields


class RecurrenceSerializer(serializers.Serializer):
    rrule = serializers.CharField(help_text="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=SU")
    timezone = serializers.CharField(help_text="IANA zone, e.g. Europe/Berlin")
    duration_minutes = serializers.IntegerField(min_value=1)


class ScopeSerializer(serializers.Serializer):
    slos = serializers.ListField(child=serializers.CharField(), required=False, help_text="service/name")
    service = serializers.CharField(required=False)
    tier = serializers.ChoiceField(choices=["edge", "private_cloud", "public_cloud"], required=False)


class CorrectionWriteSerializer(serializers.Serializer):
    """Documented shape of a correction write; validation is `slo.corrections.spec`."""

    reason = serializers.CharField()
    scope = ScopeSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(required=False, help_text="one-off: required; recurring: last start")
    recurrence = RecurrenceSerializer(required=False)
    note = serializers.CharField(required=False)


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False)


def _note(body: dict[str, Any]) -> str:
    return str(body.pop("note", "") or "")


class CorrectionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = CorrectionSerializer
    filterset_fields = ["state"]
    ordering_fields = ["created_at", "updated_at"]
    read_role = VIEWER
    write_role = OPERATOR
    action_roles = {"approve": APPROVER, "reject": APPROVER}

    def get_queryset(self) -> Any:
        return Correction.objects.exclude(state="deleted")

    def _pk(self) -> int:
        key = str(self.kwargs["pk"])
        if not key.isdigit() or not Correction.objects.filter(pk=int(key)).exclude(state="deleted").exists():
            raise NotFound("no such correction")
        return int(key)

    def _detail(self, pk: int, status: int = 200) -> Response:
        return Response(CorrectionSerializer(Correction.objects.get(pk=pk)).data, status=status)

    @extend_schema(request=CorrectionWriteSerializer, responses={201: CorrectionSerializer})
    def create(self, request: Request) -> Response:
        """A correction; in force at once, or `pending_approval` when it would hide an ongoing page."""
        body = json_object_body(request)
        note = _note(body)
        correction = services.correction_create(actor=request.user, data=body, note=note)
        return self._detail(correction.pk, status=201)

    @extend_schema(request=CorrectionWriteSerializer, responses={200: CorrectionSerializer})
    def update(self, request: Request, pk: str | None = None) -> Response:
        """A new version of the whole document."""
        correction_id = self._pk()
        body = json_object_body(request)
        note = _note(body)
        services.correction_update(actor=request.user, correction_id=correction_id, data=body, note=note)
        return self._detail(correction_id)

    @extend_schema(request=CorrectionWriteSerializer, responses={200: CorrectionSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """A new version: the given fields over the latest version."""
        correction_id = self._pk()
        body = json_object_body(request)
        note = _note(body)
        current = Correction.objects.get(pk=correction_id).spec
        services.correction_update(
            actor=request.user, correction_id=correction_id, data={**current, **body}, note=note
        )
        return self._detail(correction_id)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.correction_delete(actor=request.user, correction_id=self._pk())
        return Response(status=204)

    @extend_schema(responses={200: CorrectionVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        page = self.paginate_queryset(
            CorrectionVersion.objects.filter(correction_id=self._pk()).order_by("-version")
        )
        return self.get_paginated_response(CorrectionVersionSerializer(page, many=True).data)

    @extend_schema(request=NoteSerializer, responses={200: CorrectionSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Put the pending version in force (approvers; never its author: 403)."""
        correction_id = self._pk()
        body = json_object_body(request)
        services.correction_approve(actor=request.user, correction_id=correction_id, note=_note(body))
        return self._detail(correction_id)

    @extend_schema(request=NoteSerializer, responses={200: CorrectionSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Refuse the pending version (approvers); a version in force before it stays."""
        correction_id = self._pk()
        body = json_object_body(request)
        services.correction_reject(actor=request.user, correction_id=correction_id, note=_note(body))
        return self._detail(correction_id)
