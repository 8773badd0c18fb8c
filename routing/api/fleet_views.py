"""The fleet API.

People (role-checked): `/gateways/` registry, rotation, revisions and deliveries; `/fleet/`.
Gateways (their own token, only for their own id): `config`, `heartbeat/`, `telemetry/`.
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import Any

import django_filters
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from controlplane.api.body import json_object_body
from controlplane.errors import ValidationFailed
from controlplane.lib import fastjson
from controlplane.roles import OPERATOR, VIEWER
from routing.api.fleet_serializers import (
    BundleSerializer,
    DeliverySerializer,
    FleetSerializer,
    GatewayCompiledSerializer,
    GatewayCreatedSerializer,
    GatewayRevisionSerializer,
    GatewaySerializer,
    GatewayWriteSerializer,
    HeartbeatAnswerSerializer,
    HeartbeatSerializer,
    RotatedSerializer,
    RotateSerializer,
    TelemetryAcceptedSerializer,
)
from routing.fleet import pollcache, selectors, services
from routing.fleet.auth import GatewayTokenAuthentication, IsPathGateway
from routing.fleet.bundle import bundle_etag, etag_revisions
from routing.fleet.credentials import GATEWAY_TOKEN_PREFIX, hash_gateway_token
from routing.fleet.health import HEALTH_STATES, gateway_health
from routing.fleet.labels import LABEL_KEY_RULE, label_key_ok
from routing.models.fleet import Gateway
from slo.telemetry.batch_format import MAX_BATCH_BYTES, MAX_BATCH_MINUTES, MAX_BATCH_SAMPLES
from slo.telemetry.scope import PushScope


class GatewayFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__name")
    label = django_filters.CharFilter(method="filter_label", help_text="key=value")

    class Meta:
        model = Gateway
        fields = ["service", "tier", "region", "name"]

    def filter_label(self, queryset: Any, name: str, value: str) -> Any:
        key, separator, wanted = value.partition("=")
        if not separator or not label_key_ok(key):
            message = f"key=value, the key {LABEL_KEY_RULE}"
            raise ValidationFailed("invalid input", problems=[{"path": "label", "message": message}])
        return selectors.with_labels(queryset, {key: wanted})


def _created_body(credentials: services.GatewayCredentials) -> dict[str, Any]:
    gateway = credentials.gateway
    gateway.token = credentials.token  # type: ignore[attr-defined]
    gateway.signing_secret = credentials.signing_secret  # type: ignore[attr-defined]
    return GatewayCreatedSerializer(gateway).data


class GatewayViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Registered gateways. Operators register, edit and rotate credentials; viewers read.
    Credentials are in the answer to create and rotate only."""

    serializer_class = GatewaySerializer
    filterset_class = GatewayFilter
    ordering_fields = ["name", "created_at", "last_heartbeat_at"]
    read_role = VIEWER
    write_role = OPERATOR

    def get_queryset(self) -> Any:
        return selectors.gateway_queryset()

    def _pk(self) -> int:
        key = self.kwargs.get("pk", "")
        if not str(key).isdigit():
            raise exceptions.NotFound()
        return int(key)

    @extend_schema(request=GatewayWriteSerializer, responses={201: GatewayCreatedSerializer})
    def create(self, request: Request) -> Response:
        credentials = services.gateway_register(actor=request.user, data=json_object_body(request))
        return Response(_created_body(credentials), status=201)

    @extend_schema(request=GatewayWriteSerializer, responses={200: GatewaySerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        gateway = services.gateway_update(
            actor=request.user, gateway_id=self._pk(), data=json_object_body(request)
        )
        return Response(GatewaySerializer(gateway).data)

    @extend_schema(request=RotateSerializer, responses={200: RotatedSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        """New token and/or signing secret, shown once. The replaced ones keep working for
        `grace_seconds` (default 3600; 0 retires them at once): the old token still authenticates
        and pushes carry a signature under the old secret too, until `grace_expires_at`."""
        body = RotateSerializer(data=json_object_body(request))
        body.is_valid(raise_exception=True)
        credentials = services.gateway_rotate(
            actor=request.user, gateway_id=self._pk(), **body.validated_data
        )
        return Response(
            {
                "id": credentials.gateway.pk,
                "token": credentials.token,
                "signing_secret": credentials.signing_secret,
                "grace_seconds": body.validated_data["grace_seconds"],
                "grace_expires_at": credentials.grace_expires_at,
            }
        )

    @extend_schema(responses={200: GatewayRevisionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def revisions(self, request: Request, pk: str | None = None) -> Response:
        """Desired revisions of this gateway, newest first."""
        selectors.gateway_get(gateway_id=self._pk())
        page = self.paginate_queryset(selectors.gateway_revision_list(gateway_id=self._pk()))
        return self.get_paginated_response(GatewayRevisionSerializer(page, many=True).data)

    @extend_schema(responses={200: GatewayCompiledSerializer})
    @action(detail=True, methods=["get"])
    def compiled(self, request: Request, pk: str | None = None) -> Response:
        """The desired revision compiled to this gateway's own config (litellm-proxy: the LiteLLM
        proxy config), what the gateway runs (read back live), their diff, and what this kind does
        not enforce. For a reference gateway only the revisions are filled in."""
        from routing.fleet.adapters import litellm_view

        return Response(litellm_view(selectors.gateway_get(gateway_id=self._pk())))

    @extend_schema(responses={200: DeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """Config pushes to this gateway (the outbox), newest first."""
        selectors.gateway_get(gateway_id=self._pk())
        page = self.paginate_queryset(selectors.delivery_list(gateway_id=self._pk()))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)


class _GatewayFacing(APIView):
    """Endpoints a gateway calls with its own token; people's tokens are refused."""

    authentication_classes = [GatewayTokenAuthentication]
    permission_classes = [IsPathGateway]
    # Not role-based: the caller is a gateway, and IsPathGateway ties it to the URL's id.
    read_role = None
    write_role = None

    @staticmethod
    def registration(pk: str) -> tuple[str, str, str]:
        """(service, tier, region) the gateway is registered for: what it writes is filed under
        these, never under what its body claims."""
        row = Gateway.objects.filter(pk=int(pk)).values_list("service__name", "tier", "region").first()
        if row is None:
            raise exceptions.NotFound("no such gateway")
        service, tier, region = row
        return service, tier, region or ""


class GatewayConfigView(_GatewayFacing):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description='"rev-<n>" of the revision the gateway has (several allowed)',
            )
        ],
        responses={
            200: BundleSerializer,
            304: OpenApiResponse(description="the gateway has the desired revision"),
            404: OpenApiResponse(description="no desired revision yet"),
        },
    )
    def get(self, request: Request, pk: str) -> Response | HttpResponse:
        """The desired config bundle, with ETag `"rev-<n>"`. A matching If-None-Match answers 304
        from the authentication read alone: the bundle is not loaded."""
        desired = request.user.desired_revision
        if desired is not None and desired in etag_revisions(request.headers.get("If-None-Match")):
            response = HttpResponse(status=304)
            response["ETag"] = bundle_etag(desired)
            return response
        row = selectors.gateway_desired_bundle(gateway_id=int(pk))
        if row is None:
            raise exceptions.NotFound("no desired revision yet")
        return Response(row.bundle, headers={"ETag": bundle_etag(row.revision), "Cache-Control": "no-cache"})


class GatewayHeartbeatView(_GatewayFacing):
    @extend_schema(request=HeartbeatSerializer, responses={200: HeartbeatAnswerSerializer})
    def post(self, request: Request, pk: str) -> Response:
        """Applied revision, config etag, device health and an optional NACK; answers with the
        desired revision so the gateway can poll at once when they differ."""
        return Response(heartbeat_answer(pk, json_object_body(request)))


def heartbeat_answer(pk: str, data: dict[str, Any]) -> dict[str, Any]:
    """A heartbeat's work once its gateway is authenticated as the URL's and its throttle passed;
    shared by the view and the WSGI fast path (routing.api.gateway_fastpath)."""
    desired = services.heartbeat_record(gateway_id=int(pk), data=data)
    return {
        "desired_revision": desired,
        "desired_etag": bundle_etag(desired) if desired is not None else None,
    }


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "telemetry batch too large"
    default_code = "payload_too_large"


def _telemetry_ingest() -> Any:
    from slo.telemetry import ingest

    return ingest


def _batch_samples(payload: dict[str, Any]) -> tuple[int, int]:
    """(minutes, samples) of a push batch, counted loosely: validation is the service's job."""
    minutes = payload.get("minutes")
    if not isinstance(minutes, list):
        return 0, 0
    samples = 0
    for minute in minutes:
        if isinstance(minute, dict):
            for key in ("counters", "gauges"):
                items = minute.get(key)
                samples += len(items) if isinstance(items, list) else 0
    return len(minutes), samples


class GatewayTelemetryView(_GatewayFacing):
    reads_push_targets = True  # the SLOs the push feeds come with the token's read (one round trip)
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "ingest"

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={202: TelemetryAcceptedSerializer, 413: OpenApiResponse(description="batch too large")},
    )
    def post(self, request: Request, pk: str) -> Response:
        """A per-minute telemetry batch from this gateway (format: docs/telemetry.md), ingested
        with source `gateway:<id>`. Only series of the gateway's own service and tier: any other
        answers 403 naming the label, and nothing is stored. Minutes whose stored write is newer
        (a later `sent_at`) are left as they are and listed in `result.stale_minutes`.
        Rate-limited per gateway (throttle scope `ingest`)."""
        # Refuse an oversized body before reading it: the limits are the ingest service's own.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BATCH_BYTES:
            raise PayloadTooLarge(f"body of {length} bytes is above the limit of {MAX_BATCH_BYTES}")
        # Read the stream ourselves: Django's 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE is meant for forms
        # and would turn a legal 3-8 MB catch-up batch into a 400.
        raw = request._request.read(MAX_BATCH_BYTES + 1)
        return Response(telemetry_accept(pk, request.user, raw), status=202)


def telemetry_accept(pk: str, gateway: Any, raw: bytes) -> dict[str, Any]:
    """A push's work once its gateway is authenticated as the URL's and its throttle passed: the
    body's size, JSON and limits, then the ingest under the gateway's registration. Returns the 202
    body; raises what the API answers (413, 400, 403). Shared by the view and the WSGI fast path
    (routing.api.gateway_fastpath), so both answer alike."""
    if len(raw) > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"body above the limit of {MAX_BATCH_BYTES} bytes")
    try:
        payload = fastjson.loads(raw or b"null")
    except (ValueError, RecursionError):  # RecursionError: nesting too deep to parse
        payload = None
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "invalid input", problems=[{"path": "", "message": "the body must be a JSON object"}]
        )
    minutes, samples = _batch_samples(payload)
    if minutes > MAX_BATCH_MINUTES or samples > MAX_BATCH_SAMPLES:
        raise PayloadTooLarge(
            f"batch of {minutes} minutes and {samples} samples is above the limits of {MAX_BATCH_MINUTES} "
            f"minutes and {MAX_BATCH_SAMPLES} samples; send several batches, oldest first"
        )
    scope = PushScope(gateway=gateway.name, service=gateway.service, tier=gateway.tier, region=gateway.region)
    result = _telemetry_ingest().telemetry_batch_ingest(
        source=f"gateway:{int(pk)}", payload=payload, scope=scope, target_rows=gateway.push_target_rows
    )
    return {"accepted": True, "result": _jsonable(result)}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(value).items()}
    return value if value is None or isinstance(value, str | int | float | bool | list | dict) else str(value)


class FleetView(GenericAPIView):
    """Desired vs applied per gateway, stale heartbeats, NACK reasons, and the spread of applied
    revisions per tier and region. Filters: service, tier, region, health."""

    serializer_class = GatewaySerializer
    filterset_class = GatewayFilter
    read_role = VIEWER
    write_role = None

    def get_queryset(self) -> Any:
        return selectors.gateway_queryset().order_by("tier", "region", "name")

    @extend_schema(
        parameters=[OpenApiParameter("health", OpenApiTypes.STR, enum=list(HEALTH_STATES))],
        responses={200: FleetSerializer},
    )
    def get(self, request: Request) -> Response:
        now = timezone.now()
        queryset = self.filter_queryset(self.get_queryset())
        summary = selectors.fleet_summary(gateways=queryset, now=now)
        wanted = request.query_params.get("health")
        if wanted:
            if wanted not in HEALTH_STATES:
                raise ValidationFailed(
                    "invalid filter",
                    problems=[{"path": "health", "message": f"one of {', '.join(HEALTH_STATES)}"}],
                )
            # health is derived, not stored: filter in Python over the (indexed) candidate rows
            keep = [
                pk
                for pk, desired, applied, beat, nack in queryset.values_list(
                    "pk", "desired_revision", "applied_revision", "last_heartbeat_at", "last_nack_revision"
                )
                if gateway_health(
                    desired_revision=desired,
                    applied_revision=applied,
                    last_heartbeat_at=beat,
                    last_nack_revision=nack,
                    now=now,
                )
                == wanted
            ]
            queryset = queryset.filter(pk__in=keep)
        page = self.paginate_queryset(queryset)
        data = GatewaySerializer(page, many=True, context={"now": now}).data
        response = self.get_paginated_response(data)
        response.data["summary"] = summary
        return response


# The route's view. Its common answer, 304 to a gateway that runs its desired revision, is given
# before the middleware stack by routing.api.fastpath (config_not_modified below); everything else
# (200, 401, 403, 404) is this DRF view, which also documents the endpoint.
gateway_config = GatewayConfigView.as_view()
_GATEWAY_TABLE = Gateway._meta.db_table


def config_not_modified(request: HttpRequest, pk: str) -> HttpResponse | None:
    """The config poll's common case, a gateway that already runs its desired revision: 304 from
    the Redis poll cache (routing.fleet.pollcache) or, when it has no valid row, after one indexed
    read by token hash; None when the request needs the full view (200, 401, 403, 404)."""
    tags = request.META.get("HTTP_IF_NONE_MATCH")
    scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not (
        request.method == "GET"
        and tags
        and scheme in ("Bearer", "Gateway")
        and raw.startswith(GATEWAY_TOKEN_PREFIX)
    ):
        return None
    token_hash = hash_gateway_token(raw.strip())
    gateway_id = int(pk)
    stamp, cached = pollcache.lookup(gateway_id)
    if cached is not None and hmac.compare_digest(cached[0], token_hash.encode()):
        return _not_modified(cached[1], tags)
    # Not cached, or not this gateway's current token: the database decides, as without the cache.
    # The current token is the hot path: one unique-index read, no ORM.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, desired_revision FROM {_GATEWAY_TABLE} WHERE token_hash = %s",  # noqa: S608 - fixed name
            [token_hash],
        )
        row = cursor.fetchone()
    if row is None:
        # Only a token that is not current costs a second read: the previous one, within its
        # rotation grace window (the rule of routing.fleet.auth.token_matches).
        now = timezone.now()
        previous = (
            Gateway.objects.filter(previous_token_hash=token_hash, previous_token_expires_at__gt=now)
            .values_list("pk", "desired_revision", "previous_token_last_used_at")
            .first()
        )
        if previous is None:
            return None
        services.previous_token_used(gateway_id=previous[0], now=now, last_used_at=previous[2])
        row = previous[:2]
    elif row[0] == gateway_id and row[1] is not None:
        pollcache.fill(gateway_id, stamp, token_hash, row[1])
    if row[0] != gateway_id or row[1] is None:
        return None
    return _not_modified(row[1], tags)


def cached_not_modified(environ: dict[str, Any], pk: str) -> int | None:
    """The revision to answer 304 with from the poll cache alone (routing.api.fastpath.ConfigPollWSGI),
    or None: not a gateway token, no valid cached row, not that gateway's current token, or an
    If-None-Match without the desired revision."""
    scheme, _, raw = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme not in ("Bearer", "Gateway") or not raw.startswith(GATEWAY_TOKEN_PREFIX):
        return None
    _, cached = pollcache.lookup(int(pk), create=False)
    if cached is None or not hmac.compare_digest(cached[0], hash_gateway_token(raw.strip()).encode()):
        return None
    return cached[1] if cached[1] in etag_revisions(environ.get("HTTP_IF_NONE_MATCH")) else None


def _not_modified(revision: int, tags: str) -> HttpResponse | None:
    if revision not in etag_revisions(tags):
        return None  # the gateway needs the bundle: the view answers 200
    response = HttpResponse(status=304)
    response["ETag"] = bundle_etag(revision)
    return response


class GatewayTokenScheme(OpenApiAuthenticationExtension):
    """Documents gateway tokens (`Authorization: Bearer gw_...`) in the OpenAPI schema."""

    target_class = "routing.fleet.auth.GatewayTokenAuthentication"
    name = "gatewayToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": "a gateway's own token (gw_...)"}
