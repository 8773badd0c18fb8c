"""Reads of per-request decision records (see decisions.py), joined to the SLI minute they fell in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet

from routing.models.decisions import DecisionRecord
from slo.telemetry.minute_figures import slo_minute_figures


def decision_record_queryset(
    *,
    request_id: str | None = None,
    gateway_id: int | None = None,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    rule: str | None = None,
    route: str | None = None,
) -> QuerySet[DecisionRecord]:
    """Records matching every given filter, newest first (`since` inclusive, `until` exclusive)."""
    queryset = DecisionRecord.objects.all()
    if request_id:
        queryset = queryset.filter(request_id=request_id)
    if gateway_id is not None:
        queryset = queryset.filter(gateway_id=gateway_id)
    if service:
        queryset = queryset.filter(service=service)
    if since is not None:
        queryset = queryset.filter(at__gte=since)
    if until is not None:
        queryset = queryset.filter(at__lt=until)
    if rule:
        queryset = queryset.filter(rule=rule)
    if route:
        queryset = queryset.filter(route=route)
    return queryset.order_by("-at", "-id")


def decision_records_answer(records: Sequence[DecisionRecord]) -> list[dict[str, Any]]:
    """Records as the API answers them, each with `sli_minute`: the figures of its service's SLOs
    for its tier in the minute it fell in (one read per service and tier on the page)."""
    groups: dict[tuple[str, str], set[int]] = {}
    for record in records:
        groups.setdefault((record.service, record.tier), set()).add(record.minute)
    figures = {
        key: slo_minute_figures(service=key[0], tier=key[1], minutes=minutes)
        for key, minutes in groups.items()
    }
    return [
        {
            "request_id": record.request_id,
            "at": record.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "gateway": record.gateway_id,
            "service": record.service,
            "tier": record.tier,
            "region": record.region,
            "rule": record.rule or None,
            "admission": record.admission or None,
            "chain": record.chain,
            "route": record.route,
            "cache": record.cache,
            "model_version": record.model_version or None,
            "revision": record.revision,
            "outcome": record.outcome,
            "latency_ms": record.latency_ms,
            "sli_minute": {
                "minute": datetime.fromtimestamp(record.minute * 60, tz=UTC)
                .isoformat()
                .replace("+00:00", "Z"),
                "slos": figures[(record.service, record.tier)].get(record.minute, []),
            },
        }
        for record in records
    ]
