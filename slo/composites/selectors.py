"""Reads for composite SLOs: the catalog, their status as a document, history points."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from slo.models.budget import AlertEvent, AlertState
from slo.models.composites import Composite, CompositeStatus, CompositeStatusPoint, CompositeVersion


def composite_queryset() -> QuerySet[Composite]:
    return Composite.objects.filter(archived_at__isnull=True).select_related("service")


def composite_get(*, composite_id: int) -> Composite | None:
    return composite_queryset().filter(pk=composite_id).first()


def composite_with_status(*, composite_id: int) -> Composite | None:
    return composite_queryset().select_related("status").filter(pk=composite_id).first()


def composites_with_status() -> list[Composite]:
    """Every active composite with its status (None before the first evaluation), for the overview."""
    rows = list(composite_queryset().select_related("status").order_by("service__name", "name"))
    for row in rows:
        row.current_status = getattr(row, "status", None)
    return rows


def composite_versions(*, composite_id: int, limit: int = 50) -> list[CompositeVersion]:
    return list(CompositeVersion.objects.filter(composite_id=composite_id).order_by("-version")[:limit])


def composite_status_document(*, composite: Composite) -> dict[str, Any] | None:
    """The latest evaluation as JSON-ready data, or None before the first one."""
    status = CompositeStatus.objects.filter(composite=composite).first()
    if status is None or status.evaluated_at is None:
        return None
    firing = {
        s.severity: {"firing": s.firing, "since": s.since}
        for s in AlertState.objects.filter(
            key__startswith=f"composite:{composite.pk}:", kind="composite_burn"
        )
    }
    return {
        "composite_id": composite.pk,
        "composite_version": status.composite_version,
        "evaluated_at": status.evaluated_at,
        "aggregation": composite.aggregation,
        "objective": composite.objective,
        "sli": status.sli,
        "data_quality": status.data_quality,
        "error_budget_total": status.error_budget_total,
        "error_budget_consumed": status.error_budget_consumed,
        "error_budget_remaining": status.error_budget_remaining,
        "time_to_exhaustion_s": status.time_to_exhaustion_s,
        "time_to_exhaustion_basis": status.time_to_exhaustion_basis,
        "period_start": status.period_start,
        "period_end": status.period_end,
        "alert_state": status.alert_state,
        "burn_rates": status.burn_rates,
        "windows": status.windows,
        "tiers": status.tiers,
        "members_without_data": status.members_without_data,
        "alerts": firing,
    }


def composite_points(*, composite_id: int, start: datetime, end: datetime) -> QuerySet[CompositeStatusPoint]:
    return CompositeStatusPoint.objects.filter(
        composite_id=composite_id, at__gte=start, at__lte=end
    ).order_by("at")


def composite_alert_events(*, composite_id: int) -> QuerySet[AlertEvent]:
    return AlertEvent.objects.filter(
        state_key__startswith=f"composite:{composite_id}:", kind="composite_burn"
    )


def composite_firing(*, composite_id: int) -> QuerySet[AlertState]:
    return AlertState.objects.filter(
        key__startswith=f"composite:{composite_id}:", kind="composite_burn", firing=True
    )
