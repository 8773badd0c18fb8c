"""Reads for the gateway fleet."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet

from controlplane.errors import NotFound
from routing.fleet.health import DEFAULT_STALE_AFTER_S, gateway_health
from routing.models.fleet import Delivery, Gateway, GatewayRevision


def gateway_queryset() -> QuerySet[Gateway]:
    return Gateway.objects.select_related("service")


def gateway_get(*, gateway_id: int) -> Gateway:
    gateway = gateway_queryset().filter(pk=gateway_id).first()
    if gateway is None:
        raise NotFound("no such gateway")
    return gateway


def gateway_health_of(
    gateway: Gateway, *, now: datetime, stale_after_s: float = DEFAULT_STALE_AFTER_S
) -> str:
    return gateway_health(
        desired_revision=gateway.desired_revision,
        applied_revision=gateway.applied_revision,
        last_heartbeat_at=gateway.last_heartbeat_at,
        last_nack_revision=gateway.last_nack_revision,
        now=now,
        stale_after_s=stale_after_s,
    )


def gateway_desired_bundle(*, gateway_id: int) -> GatewayRevision | None:
    """The newest revision of a gateway (what it should run), or None before the first one."""
    return GatewayRevision.objects.filter(gateway_id=gateway_id).order_by("-revision").first()


def gateway_revision_list(*, gateway_id: int) -> QuerySet[GatewayRevision]:
    return GatewayRevision.objects.filter(gateway_id=gateway_id).order_by("-revision")


def delivery_list(*, gateway_id: int | None = None) -> QuerySet[Delivery]:
    queryset = Delivery.objects.select_related("revision").order_by("-created_at", "-id")
    if gateway_id is not None:
        queryset = queryset.filter(gateway_id=gateway_id)
    return queryset


def fleet_summary(
    *, gateways: QuerySet[Gateway], now: datetime, stale_after_s: float = DEFAULT_STALE_AFTER_S
) -> dict[str, Any]:
    """Counts by health, and the spread of applied revisions per tier and region (a rollout
    in progress shows two revisions; a stuck one shows the same spread for hours)."""
    by_health: dict[str, int] = defaultdict(int)
    rows = gateways.values_list(
        "desired_revision", "applied_revision", "last_heartbeat_at", "last_nack_revision"
    )
    for desired, applied, heartbeat_at, nack in rows.iterator(chunk_size=2000):
        by_health[
            gateway_health(
                desired_revision=desired,
                applied_revision=applied,
                last_heartbeat_at=heartbeat_at,
                last_nack_revision=nack,
                now=now,
                stale_after_s=stale_after_s,
            )
        ] += 1
    spread: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    grouped = gateways.order_by().values("tier", "region", "applied_revision").annotate(count=Count("id"))
    for row in grouped:
        key = "none" if row["applied_revision"] is None else str(row["applied_revision"])
        spread[(row["tier"], row["region"])][key] = row["count"]
    return {
        "total": sum(by_health.values()),
        "by_health": dict(sorted(by_health.items())),
        "version_spread": [
            {
                "tier": tier,
                "region": region,
                "applied_revisions": dict(sorted(counts.items())),
                "distinct": len(counts),
            }
            for (tier, region), counts in sorted(spread.items())
        ],
    }
