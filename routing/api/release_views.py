"""The release API: releases and their decisions, the model registry, per-service release settings,
the Alertmanager webhook (a rollback trigger) and decision provenance.

Roles: people read with VIEWER; operators create, submit, cancel and roll back; approvers approve,
reject and resume (never their own release: 403); admins set approvals per service and manage the
Alertmanager secrets. The webhook takes a dedicated bearer secret (`amw_...`) or an operator token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import django_filters
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import authentication, exceptions, mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.body import json_object_body
from controlplane.auth import BearerTokenAuthentication
from controlplane.roles import ADMIN, APPROVER, OPERATOR, VIEWER, has_role
from controlplane.throttling import bearer_refused
from routing.api.release_serializers import (
    AlertmanagerResultSerializer,
    AlertReceiptSerializer,
    CommentSerializer,
    ModelVersionSerializer,
    ModelVersionWriteSerializer,
    ProvenanceRouteRequestSerializer,
    ProvenanceRouteSerializer,
    ProvenanceSerializer,
    ReasonSerializer,
    ReleaseDetailSerializer,
    ReleaseSerializer,
    ReleaseSettingsSerializer,
    ReleaseWriteSerializer,
    SubmitSerializer,
    WavePreviewSerializer,
    WebhookSecretCreatedSerializer,
    WebhookSecretSerializer,
    WebhookSecretWriteSerializer,
)
from routing.models.releases import RELEASE_KINDS, AlertReceipt, ModelVersion, Release, WebhookSecret
from routing.releases import (
    alertmanager,
    inputs,
    lifecycle,
    model_versions,
    provenance,
    selectors,
    service_settings,
)
from routing.releases.machine import STATES


def _pk(view: Any) -> int:
    key = str(view.kwargs.get("pk", ""))
    if not key.isdigit():
        raise exceptions.NotFound()
    return int(key)


class ReleaseFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__name")
    state = django_filters.ChoiceFilter(choices=[(s, s) for s in STATES])
    kind = django_filters.ChoiceFilter(choices=[(k, k) for k in RELEASE_KINDS])

    class Meta:
        model = Release
        fields = ["service", "state", "kind"]


class ReleaseViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Releases. A draft is submitted (gates run, targets and waves are fixed), approved by N
    approvers, then rolled out by the release tick wave by wave with canary analysis."""

    serializer_class = ReleaseSerializer
    filterset_class = ReleaseFilter
    ordering_fields = ["created_at", "updated_at", "state"]
    read_role = VIEWER
    write_role = OPERATOR
    # a preview writes nothing: anyone who may read releases may ask what a plan would give
    action_roles = {"approve": APPROVER, "reject": APPROVER, "resume": APPROVER, "preview": VIEWER}

    def get_queryset(self) -> Any:
        return selectors.release_queryset()

    def _detail(self, release_id: int, status: int = 200) -> Response:
        return Response(
            ReleaseDetailSerializer(selectors.release_get(release_id=release_id)).data, status=status
        )

    @extend_schema(responses={200: ReleaseDetailSerializer})
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """A release with its transitions, gate results, approvals, targets and rollbacks."""
        return self._detail(_pk(self))

    @extend_schema(request=ReleaseWriteSerializer, responses={201: ReleaseDetailSerializer})
    def create(self, request: Request) -> Response:
        """A draft release (nothing runs until it is submitted)."""
        release = lifecycle.release_create(actor=request.user, data=json_object_body(request))
        return self._detail(release.pk, status=201)

    @extend_schema(request=ReleaseWriteSerializer, responses={200: WavePreviewSerializer})
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        """What a create body would give, storing nothing: the gateways its target matches now and
        each wave's effective gateway count and share (a wave is whole gateways, at least one)."""
        return Response(lifecycle.release_preview(data=json_object_body(request)))

    @extend_schema(request=SubmitSerializer, responses={200: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        """Resolve targets, plan waves, run the submission gates. 400 when the first wave is bigger
        than asked and not confirmed (`confirm_wave_sizes`); 409 with the gate evidence when a gate
        fails; a gate without data pauses the release for a person."""
        body = inputs.parse_input(inputs.SubmitInput, json_object_body(request), detail="invalid input")
        lifecycle.release_submit(
            actor=request.user, release_id=_pk(self), confirm_wave_sizes=body.confirm_wave_sizes
        )
        return self._detail(_pk(self))

    @extend_schema(request=CommentSerializer, responses={200: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """One approval with a comment (approvers; never the author: 403)."""
        body = json_object_body(request)
        lifecycle.release_approve(actor=request.user, release_id=_pk(self), comment=body.get("comment"))
        return self._detail(_pk(self))

    @extend_schema(request=CommentSerializer, responses={200: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """A rejection with a comment: one stops the release."""
        body = json_object_body(request)
        lifecycle.release_reject(actor=request.user, release_id=_pk(self), comment=body.get("comment"))
        return self._detail(_pk(self))

    @extend_schema(request=ReasonSerializer, responses={200: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Go on after an inconclusive verdict (approvers; not the author), with a reason."""
        body = json_object_body(request)
        lifecycle.release_resume(actor=request.user, release_id=_pk(self), reason=body.get("reason"))
        return self._detail(_pk(self))

    @extend_schema(request=ReasonSerializer, responses={200: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop a release no gateway runs yet, with a reason."""
        body = json_object_body(request)
        lifecycle.release_cancel(actor=request.user, release_id=_pk(self), reason=body.get("reason"))
        return self._detail(_pk(self))

    @extend_schema(request=ReasonSerializer, responses={200: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        """Restore every touched gateway's last-known-good (delivered first), with a reason.
        Allowed during a budget freeze."""
        body = json_object_body(request)
        lifecycle.release_rollback(actor=request.user, release_id=_pk(self), reason=body.get("reason"))
        return self._detail(_pk(self))


class ModelVersionFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__name")

    class Meta:
        model = ModelVersion
        fields = ["service", "name", "version", "artifact_digest"]


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The model registry with provenance. Provenance fields are fixed once created."""

    serializer_class = ModelVersionSerializer
    filterset_class = ModelVersionFilter
    ordering_fields = ["created_at", "name", "version"]
    read_role = VIEWER
    write_role = OPERATOR

    def get_queryset(self) -> Any:
        return selectors.model_version_queryset()

    @extend_schema(request=ModelVersionWriteSerializer, responses={201: ModelVersionSerializer})
    def create(self, request: Request) -> Response:
        model = model_versions.model_version_create(actor=request.user, data=json_object_body(request))
        return Response(ModelVersionSerializer(model).data, status=201)

    @extend_schema(request=ModelVersionWriteSerializer, responses={200: ModelVersionSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Only `description` and `rollback_target` change; provenance is fixed."""
        model = model_versions.model_version_update(
            actor=request.user, model_id=_pk(self), data=json_object_body(request)
        )
        return Response(ModelVersionSerializer(model).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Only a version never released (released ones stay for provenance: 409)."""
        model_versions.model_version_delete(actor=request.user, model_id=_pk(self))
        return Response(status=204)


class ReleaseSettingsView(APIView):
    """Per-service release settings: required approvals and canary criteria."""

    read_role = VIEWER
    write_role = ADMIN

    @extend_schema(responses={200: ReleaseSettingsSerializer})
    def get(self, request: Request, service: str) -> Response:
        from slo.models import Service

        row = Service.objects.filter(name=service).first()
        if row is None:
            raise exceptions.NotFound("no such service")
        settings_row = selectors.release_settings_for(service_id=row.pk)
        settings_row.service = row
        return Response(ReleaseSettingsSerializer(settings_row).data)

    @extend_schema(request=ReleaseSettingsSerializer, responses={200: ReleaseSettingsSerializer})
    def put(self, request: Request, service: str) -> Response:
        row = service_settings.release_settings_save(
            actor=request.user, service_name=service, data=json_object_body(request)
        )
        return Response(ReleaseSettingsSerializer(row).data)


class WebhookSecretViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Bearer secrets for the Alertmanager webhook (admins). The value is shown once."""

    serializer_class = WebhookSecretSerializer
    read_role = ADMIN
    write_role = ADMIN
    queryset = WebhookSecret.objects.all()

    @extend_schema(request=WebhookSecretWriteSerializer, responses={201: WebhookSecretCreatedSerializer})
    def create(self, request: Request) -> Response:
        row, raw = alertmanager.webhook_secret_create(
            actor=request.user, name=json_object_body(request).get("name")
        )
        row.secret = raw  # type: ignore[attr-defined]
        return Response(WebhookSecretCreatedSerializer(row).data, status=201)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        alertmanager.webhook_secret_delete(actor=request.user, secret_id=_pk(self))
        return Response(status=204)


@dataclass
class WebhookPrincipal:
    """Stands in for request.user when Alertmanager authenticates with its secret."""

    secret_id: int
    name: str

    is_authenticated = True
    is_active = True

    @property
    def pk(self) -> str:
        return f"webhook-{self.secret_id}"

    def get_username(self) -> str:
        return f"alertmanager:{self.name}"


class WebhookSecretAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer amw_...`; anything else is left to the user-token authentication."""

    def authenticate(self, request: Request) -> tuple[WebhookPrincipal, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme != "Bearer" or not raw.startswith(alertmanager.WEBHOOK_SECRET_PREFIX):
            return None
        row = WebhookSecret.objects.filter(secret_hash=hashlib.sha256(raw.encode()).hexdigest()).first()
        if row is None:  # counted per address; a valid secret is never refused for others' failures
            raise bearer_refused(request, "invalid webhook secret")
        now = timezone.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            WebhookSecret.objects.filter(pk=row.pk).update(last_used_at=now)
        return WebhookPrincipal(row.pk, row.name), None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="alertmanager"'


class WebhookOrOperator(permissions.BasePermission):
    message = "a webhook secret or an operator token is required"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if isinstance(user, WebhookPrincipal):
            return True
        return bool(user and user.is_authenticated and has_role(user, OPERATOR))


class AlertmanagerWebhookView(APIView):
    """Alertmanager webhook receiver (payload version 4). Every alert is recorded with its verdict;
    a firing alert of a rollback severity (default `page`) that began after a release's rollout
    began, naming its service (`service` or `slo_service`) and, when labelled, a tier and region the
    release runs on, rolls that release back (docs/releases.md)."""

    authentication_classes = [WebhookSecretAuthentication, BearerTokenAuthentication]
    permission_classes = [WebhookOrOperator]
    # Not role-only: the webhook secret is not a person. People need OPERATOR (WebhookOrOperator).
    read_role = None
    write_role = OPERATOR

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: AlertmanagerResultSerializer})
    def post(self, request: Request) -> Response:
        user = request.user
        actor = user.get_username() if isinstance(user, WebhookPrincipal) else user
        result = alertmanager.alertmanager_webhook_handle(actor=actor, payload=json_object_body(request))
        return Response(result)


class AlertReceiptFilter(django_filters.FilterSet):
    release = django_filters.NumberFilter(field_name="release_id")
    acted = django_filters.BooleanFilter()

    class Meta:
        model = AlertReceipt
        fields = ["release", "service", "alertname", "severity", "acted", "fingerprint"]


class AlertReceiptViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Every alert the Alertmanager webhook received, newest first: per release it was judged
    against, whether it rolled that release back, and why or why not."""

    serializer_class = AlertReceiptSerializer
    filterset_class = AlertReceiptFilter
    read_role = VIEWER
    write_role = None
    queryset = AlertReceipt.objects.order_by("-received_at", "-id")


class ProvenanceView(APIView):
    """What a gateway ran at an instant and which release put it there."""

    read_role = VIEWER
    write_role = None

    @extend_schema(
        parameters=[
            OpenApiParameter("gateway", int, required=True),
            OpenApiParameter("at", OpenApiTypes.DATETIME, required=False, description="default: now"),
        ],
        responses={200: ProvenanceSerializer},
    )
    def get(self, request: Request) -> Response:
        raw_at = request.query_params.get("at")
        at = inputs.parse_at(raw_at) if raw_at else timezone.now()
        return Response(provenance.provenance_at(gateway_id=request.query_params.get("gateway"), at=at))


class ProvenanceRouteView(APIView):
    """Which rule would have routed a request, on the policy a gateway ran at that time. A read
    (POST only because the request context is a body)."""

    read_role = VIEWER
    write_role = VIEWER

    @extend_schema(request=ProvenanceRouteRequestSerializer, responses={200: ProvenanceRouteSerializer})
    def post(self, request: Request) -> Response:
        body = json_object_body(request)
        at = inputs.parse_at(body.get("at")) if body.get("at") is not None else timezone.now()
        return Response(
            provenance.provenance_route(gateway_id=body.get("gateway"), at=at, context=body.get("context"))
        )


class WebhookSecretScheme(OpenApiAuthenticationExtension):
    """OpenAPI: the Alertmanager webhook's dedicated bearer secret."""

    target_class = WebhookSecretAuthentication
    name = "alertmanagerSecret"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": "Alertmanager webhook secret (amw_...)"}
