"""The page of one gateway: what it runs and where that came from (each config revision linked to
the document versions and the release that produced it), its device-health history as charts with
the thresholds that act on it, its deliveries, and the capacity advice and alerts about it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from controlplane.lib.charts import Chart, duration, line_figure
from controlplane.roles import VIEWER
from routing.capacity.health import pool_label
from routing.capacity.selectors import gateway_health_history, recommendation_queryset
from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY
from routing.documents.yamlio import canonical_sha256
from routing.fleet.adapters import litellm_view
from routing.fleet.selectors import gateway_health_of, gateway_queryset
from routing.models.capacity import ACTIVE
from routing.models.fleet import KIND_LITELLM, Delivery, GatewayRevision
from routing.policy.schema import Autoscaling
from slo.models.budget import AlertState
from web.access import role_required

RANGES = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
}
REVISIONS_SHOWN = 20
DELIVERIES_SHOWN = 20
KIND_SLUGS = {ROUTING_POLICY.bundle_key: "routing-policies", CACHE_CONFIG.bundle_key: "cache-configs"}


def _rules(bundle: Any) -> Autoscaling:
    raw = ((bundle or {}).get("routing_policy") or {}).get("autoscaling")
    try:
        return Autoscaling.model_validate(raw) if isinstance(raw, dict) else Autoscaling()
    except ValueError:
        return Autoscaling()


def _provenance(service_id: int, revisions: list[GatewayRevision]) -> dict[tuple[int, str], dict[str, Any]]:
    """(revision id, bundle key) -> the document version whose content the revision carries."""
    wanted: dict[str, set[str]] = {key: set() for key in KIND_SLUGS}
    hashes: dict[tuple[int, str], str] = {}
    for revision in revisions:
        for key in KIND_SLUGS:
            document = (revision.bundle or {}).get(key)
            if isinstance(document, dict):
                hashes[(revision.pk, key)] = digest = canonical_sha256(document)
                wanted[key].add(digest)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for kind in (ROUTING_POLICY, CACHE_CONFIG):
        rows = (
            kind.version_model.objects.filter(
                line__service_id=service_id, document_sha256__in=wanted[kind.bundle_key]
            )
            .order_by("version")
            .values_list("line_id", "version", "document_sha256", "state")
        )
        for line_id, version, digest, state in rows:  # the newest version with that content wins
            found[(kind.bundle_key, digest)] = {
                "label": kind.label,
                "slug": KIND_SLUGS[kind.bundle_key],
                "line": line_id,
                "version": version,
                "state": state,
            }
    return {key: found[(key[1], digest)] for key, digest in hashes.items() if (key[1], digest) in found}


def _health_charts(points: list[dict[str, Any]], rules: Autoscaling, start: Any, end: Any) -> list[Chart]:
    times = [p["at"] for p in points]
    edge = rules.edge
    span = {"x_range": (start, end)}

    def series(field: str, name: str) -> dict[str, Any]:
        return {"name": name, "x": times, "y": [p[field] for p in points]}

    hint = "The gateway reports its health with every heartbeat (15 s by default)."
    return [
        Chart(
            "chart-temperature",
            line_figure(
                title="Device temperature",
                series=[series("temperature_c", "temperature")],
                y_title="°C",
                thresholds=[{"value": edge.max_temperature_c, "label": f"max {edge.max_temperature_c:g} °C"}],
                **span,
            ),
            caption="Above the line, capacity advice moves load off the device, a device-health alert "
            "fires and release waves skip it.",
            empty_hint=hint,
        ),
        Chart(
            "chart-memory",
            line_figure(
                title="Memory headroom",
                series=[series("memory_headroom_pct", "memory headroom")],
                y_title="%",
                thresholds=[
                    {"value": edge.min_memory_headroom_pct, "label": f"min {edge.min_memory_headroom_pct:g}%"}
                ],
                **span,
            ),
            caption="Below the line the device counts as short of memory.",
            empty_hint=hint,
        ),
        Chart(
            "chart-backhaul",
            line_figure(
                title="Backhaul round trip to the cloud",
                series=[series("backhaul_rtt_ms", "backhaul RTT")],
                y_title="ms",
                **span,
            ),
            caption="Offload to the cloud needs a healthy backhaul.",
            empty_hint=hint,
        ),
        Chart(
            "chart-queue",
            line_figure(
                title="Queue depth and workers",
                series=[series("queue_depth", "queued requests"), series("active_workers", "active workers")],
                y_title="requests / workers",
                **span,
            ),
            caption=f"Queue depth over {rules.scale_out_queue_ratio:g}× the workers for "
            f"{rules.scale_out_queue_for_s:g} s asks for more capacity.",
            empty_hint=hint,
        ),
    ]


@login_required
@role_required(VIEWER)
def gateway_detail(request: HttpRequest, pk: int) -> HttpResponse:
    gateway = gateway_queryset().filter(pk=pk).first()
    if gateway is None:
        raise Http404("no such gateway")
    now = timezone.now()
    range_key = request.GET.get("range", "6h")
    range_key = range_key if range_key in RANGES else "6h"
    start = now - RANGES[range_key]
    revisions = list(GatewayRevision.objects.filter(gateway=gateway).order_by("-revision")[:REVISIONS_SHOWN])
    provenance = _provenance(gateway.service_id, revisions)
    revision_rows = [
        {
            "revision": r,
            "applied": r.revision == gateway.applied_revision,
            "desired": r.revision == gateway.desired_revision,
            "documents": [provenance[(r.pk, key)] for key in KIND_SLUGS if (r.pk, key) in provenance],
            "model_version": (r.bundle or {}).get("model_version"),
        }
        for r in revisions
    ]
    applied = next((r for r in revisions if r.revision == gateway.applied_revision), None)
    rules = _rules(applied.bundle if applied else None)
    points = gateway_health_history(gateway_id=gateway.pk, since=start, until=now)
    age = (now - gateway.last_heartbeat_at).total_seconds() if gateway.last_heartbeat_at else None
    pool = pool_label(gateway.labels)
    return render(
        request,
        "routing/gateway_detail.html",
        {
            "nav": "fleet",
            "gateway": gateway,
            "health": gateway_health_of(gateway, now=now),
            "heartbeat_age": duration(age) if age is not None else "never",
            "pool": pool,
            "revision_rows": revision_rows,
            "deliveries": list(
                Delivery.objects.filter(gateway=gateway).select_related("revision")[:DELIVERIES_SHOWN]
            ),
            "charts": _health_charts(points, rules, start, now),
            # a LiteLLM proxy: its compiled config, what it runs (read back live) and the diff
            "adapter_views": (
                [{**litellm_view(gateway, read_back_timeout_s=2), "gateway": gateway}]
                if gateway.kind == KIND_LITELLM
                else []
            ),
            "latest": points[-1] if points else None,
            "rules": rules,
            "range_key": range_key,
            "ranges": list(RANGES),
            "device_alert": AlertState.objects.filter(
                key=f"svc:{gateway.service.name}:device_health:{gateway.name}", firing=True
            ).first(),
            "recommendations": list(
                recommendation_queryset(
                    service=gateway.service.name,
                    state=ACTIVE,
                    tier=gateway.tier,
                    region=gateway.region,
                    pool=pool,
                )
            ),
        },
    )
