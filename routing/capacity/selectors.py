"""Reading capacity recommendations and gateway health for the API, the pages and /metrics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet

from controlplane.errors import NotFound
from routing.capacity.health import fleet_pools
from routing.models.capacity import (
    ACTIVE,
    OFFLOAD_TO_CLOUD,
    SCALE_IN,
    SCALE_OUT,
    SHIFT_TO_NEARBY,
    CapacityRecommendation,
    GatewayHealthSample,
)
from routing.models.fleet import Gateway
from slo.models import Service

HEALTH_FIELDS = (
    "temperature_c",
    "memory_headroom_pct",
    "backhaul_rtt_ms",
    "backhaul_healthy",
    "queue_depth",
    "active_workers",
    "request_age_ms",
    "accelerator_util_pct",
    "p95_ms",
)


def recommendation_queryset(
    *,
    service: str | None = None,
    state: str | None = None,
    tier: str | None = None,
    region: str | None = None,
    pool: str | None = None,
) -> QuerySet[CapacityRecommendation]:
    queryset = CapacityRecommendation.objects.select_related("service").order_by("-opened_at", "-id")
    if service is not None:
        queryset = queryset.filter(service__name=service)
    if state is not None:
        queryset = queryset.filter(state=state)
    if tier is not None:
        queryset = queryset.filter(tier=tier)
    if region is not None:
        queryset = queryset.filter(region=region)
    if pool is not None:
        queryset = queryset.filter(pool=pool)
    return queryset


def recommendation_answer(rec: CapacityRecommendation, *, evidence: bool = True) -> dict[str, Any]:
    out = {
        "id": rec.pk,
        "service": rec.service.name,
        "tier": rec.tier,
        "region": rec.region,
        "pool": rec.pool,
        "action": rec.action,
        "amount": rec.amount,
        "current_workers": rec.current_workers,
        "desired_workers": rec.desired_workers,
        "reason": rec.reason,
        "state": rec.state,
        "opened_at": rec.opened_at,
        "last_seen_at": rec.last_seen_at,
        "calm_since": rec.calm_since,
        "cleared_at": rec.cleared_at,
        "clear_reason": rec.clear_reason,
        "evaluations": rec.evaluations,
    }
    if evidence:
        out["evidence"] = rec.evidence
        out["opening_evidence"] = rec.opening_evidence
    return out


def scaler_metric(
    *, service: str, tier: str | None, region: str | None, pool: str | None, now: datetime
) -> dict[str, Any]:
    """The figures a KEDA `metrics-api` trigger (or any autoscaler) reads for the matching pools:
    current workers (from the newest health reports), desired workers (the active scale-out or
    scale-in recommendation's target, else the current count) and workers' worth of load to move
    elsewhere (active offload and shift recommendations)."""
    record = Service.objects.filter(name=service).first()
    if record is None:
        raise NotFound(f"no service {service!r}")
    gateways = Gateway.objects.filter(service=record)
    if tier is not None:
        gateways = gateways.filter(tier=tier)
    if region is not None:
        gateways = gateways.filter(region=region)
    fleet = fleet_pools(now=now, gateway_ids=gateways.values_list("pk", flat=True))
    pools = [p for p in fleet.pools if pool is None or p.key.pool == pool]
    active = list(recommendation_queryset(service=service, state=ACTIVE, tier=tier, region=region, pool=pool))
    by_pool: dict[tuple[str, str, str], list[CapacityRecommendation]] = {}
    for rec in active:
        by_pool.setdefault((rec.tier, rec.region, rec.pool), []).append(rec)
    current = desired = offload = 0
    for telemetry in pools:
        workers = telemetry.windows[-1].active_workers if telemetry.windows else 0
        recs = {
            r.action: r
            for r in by_pool.get((telemetry.key.tier, telemetry.key.region, telemetry.key.pool), [])
        }
        current += workers
        if SCALE_OUT in recs:
            desired += recs[SCALE_OUT].desired_workers
        elif SCALE_IN in recs:
            desired += recs[SCALE_IN].desired_workers
        else:
            desired += workers
        offload += sum(recs[a].amount for a in (OFFLOAD_TO_CLOUD, SHIFT_TO_NEARBY) if a in recs)
    return {
        "service": service,
        "tier": tier,
        "region": region,
        "pool": pool,
        "pools": len(pools),
        "telemetry": bool(pools),
        "currentWorkers": current,
        "desiredWorkers": desired,
        "offloadWorkers": offload,
        "activeRecommendations": len(active),
        "recommendations": [
            {"id": r.pk, "pool": r.pool_label, "action": r.action, "amount": r.amount, "reason": r.reason}
            for r in active
        ],
        "asOf": now.isoformat(),
    }


def active_for_metrics() -> Iterable[tuple[str, str, str, str, str, int, int, int]]:
    """(service, tier, region, pool, action, amount, current, desired) of every active row."""
    return CapacityRecommendation.objects.filter(state=ACTIVE).values_list(
        "service__name", "tier", "region", "pool", "action", "amount", "current_workers", "desired_workers"
    )


def gateway_health_history(*, gateway_id: int, since: datetime, until: datetime) -> list[dict[str, Any]]:
    rows = (
        GatewayHealthSample.objects.filter(gateway_id=gateway_id, at__gte=since, at__lt=until)
        .order_by("at")
        .values("at", *HEALTH_FIELDS)
    )
    return list(rows[:20000])


def default_health_span() -> timedelta:
    return timedelta(hours=6)
