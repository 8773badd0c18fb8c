"""Reads for the gateway fleet."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet

from controlplane.errors import NotFound
from routing.fleet.health import DEFAULT_STALE_AFTER_S, gateway_health
from routing.models.fleet import Delivery, Gateway, GatewayRevision


def gateway_queryset() -> QuerySet[Gateway]:
    return Gateway.objects.select_related("service")


def with_labels(queryset: QuerySet[Gateway], labels: dict[str, Any]) -> QuerySet[Gateway]:
    """Gateways whose labels hold every `labels` pair: jsonb containment on PostgreSQL; on the embedded
    SQLite default (no JSON containment there) the same match made in Python over the candidates."""
    if connection.features.supports_json_field_contains:
        return queryset.filter(labels__contains=labels)
    matching = [
        pk
        for pk, held in queryset.values_list("pk", "labels")
        if isinstance(held, dict) and all(held.get(key) == value for key, value in labels.items())
    ]
    return queryset.filter(pk__in=matching)


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


def applied_document_versions(*, gateways: list[Gateway]) -> dict[int, list[dict[str, Any]]]:
    """gateway id -> the document versions its applied revision carries, routing policy first:
    `[{"kind": "routing_policy" | "cache_config", "label", "line_id", "version", "state"}]`.

    A revision stores the documents, not their version numbers, so they are matched by content
    (the canonical SHA-256 every version stores) among the versions of the gateway's service; the
    newest version with that content wins. A document no version carries (a default bundle, or
    one set by hand) is left out. Three queries, whatever the number of gateways."""
    from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY
    from routing.documents.yamlio import canonical_sha256
    from routing.releases.bundles import applied_bundles

    kinds = (ROUTING_POLICY, CACHE_CONFIG)
    digests: dict[tuple[int, str], str] = {}
    for gateway_id, (_revision, bundle) in applied_bundles(gateways).items():
        for kind in kinds:
            document = (bundle or {}).get(kind.bundle_key)
            if isinstance(document, dict):
                digests[(gateway_id, kind.bundle_key)] = canonical_sha256(document)
    service_of = {g.pk: g.service_id for g in gateways}
    found: dict[tuple[str, int, str], dict[str, Any]] = {}
    for kind in kinds:
        wanted = {d for (_g, key), d in digests.items() if key == kind.bundle_key}
        if not wanted:
            continue
        rows = (
            kind.version_model.objects.filter(
                line__service_id__in=set(service_of.values()), document_sha256__in=wanted
            )
            .order_by("version")
            .values_list("line__service_id", "line_id", "version", "document_sha256", "state")
        )
        for service_id, line_id, version, digest, state in rows:
            found[(kind.bundle_key, service_id, digest)] = {
                "kind": kind.bundle_key,
                "label": kind.label,
                "line_id": line_id,
                "version": version,
                "state": state,
            }
    out: dict[int, list[dict[str, Any]]] = {}
    for gateway in gateways:
        out[gateway.pk] = [
            found[key]
            for kind in kinds
            if (digest := digests.get((gateway.pk, kind.bundle_key))) is not None
            and (key := (kind.bundle_key, gateway.service_id, digest)) in found
        ]
    return out
