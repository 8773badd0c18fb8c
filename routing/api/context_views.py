"""Gateway-facing: request-context samples (`POST /api/v1/gateways/<id>/contexts/`).

Authenticated like the telemetry push (the gateway's own token, only for its own id). The samples
are stored under the gateway's registration (service, tier, region), never the sender's claim.
"""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from controlplane.api.body import json_object_body
from routing.api.fleet_views import _GatewayFacing
from slo.telemetry.context_services import context_samples_ingest


class GatewayContextsView(_GatewayFacing):
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
        """Per minute, a uniform sample of the request contexts this gateway's routing decisions saw
        and how many requests it decided (format: docs/telemetry.md, "Request contexts"). The release
        simulation gate replays them. Rate-limited with the telemetry push (throttle scope `ingest`)."""
        payload = json_object_body(request)
        service, tier, region = self.registration(pk)
        result = context_samples_ingest(
            source=f"gateway:{int(pk)}", service=service, tier=tier, region=region, payload=payload
        )
        return Response({"accepted": True, "result": asdict(result)}, status=202)
