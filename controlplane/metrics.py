"""The control plane's own Prometheus metrics, served at /metrics.

Scraping needs either `Authorization: Bearer $METRICS_TOKEN` (compared in constant
time) or an API token / session of a user with a role. Refused bearer credentials count
against the client address like everywhere else (429 past THROTTLE_LOGIN).
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from controlplane.auth import BearerTokenAuthentication
from controlplane.env import env_str
from controlplane.models.tokens import TOKEN_PREFIX
from controlplane.roles import user_roles
from controlplane.throttling import bearer_refused

INGESTED_SAMPLES = Counter(
    "controlplane_ingested_minute_samples_total", "Per-minute telemetry samples stored", ["path", "source"]
)
INGEST_ERRORS = Counter(
    "controlplane_ingest_errors_total", "Rejected or failed telemetry batches", ["path", "reason"]
)
EVALUATION_SECONDS = Histogram(
    "controlplane_evaluation_seconds",
    "Duration of one budget evaluation cycle",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EVALUATED_SLOS = Gauge("controlplane_evaluated_slos", "SLOs in the last evaluation cycle")
DELIVERIES = Counter("controlplane_deliveries_total", "Config deliveries to gateways", ["result"])
SOURCE_UP = Gauge("controlplane_telemetry_source_up", "1 when the last pull succeeded", ["source"])


def metrics_view(request: HttpRequest) -> HttpResponse:
    try:
        authorized = _authorized(request)
    except Throttled as exc:
        response = HttpResponse(
            "too many failed authentication attempts\n", status=429, content_type="text/plain"
        )
        response["Retry-After"] = str(int(exc.wait or 1))
        return response
    if not authorized:
        response = HttpResponse("authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _authorized(request: HttpRequest) -> bool:
    """True for METRICS_TOKEN or a user with a role; raises Throttled when a refused bearer
    credential is past the failure limit (controlplane.throttling)."""
    expected = env_str("METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    bearer = header[7:].strip() if header.startswith("Bearer ") else None
    if expected and bearer is not None and hmac.compare_digest(bearer, expected):
        return True
    if getattr(request, "user", None) is not None and user_roles(request.user):
        return True
    if bearer is not None and not bearer.startswith(TOKEN_PREFIX):
        # a wrong METRICS_TOKEN (an operator's choice, maybe short): counted like any refused secret
        refusal = bearer_refused(request, "invalid metrics token")
        if isinstance(refusal, Throttled):
            raise refusal
        return False
    try:
        result = BearerTokenAuthentication().authenticate(Request(request))
    except AuthenticationFailed:
        return False
    return bool(result and user_roles(result[0]))
