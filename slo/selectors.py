"""Reads for the SLO catalog."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from slo.models import Service, Slo, SloVersion


def service_queryset() -> QuerySet[Service]:
    """Every service, by name."""
    return Service.objects.order_by("name")


def service_by_name(*, name: str) -> Service | None:
    return Service.objects.filter(name=name).first()


def active_slos(*, service: Service | None = None) -> QuerySet[Slo]:
    """SLOs not archived (of one service when given), by name, with their status."""
    slos = Slo.objects.filter(archived_at__isnull=True).select_related("status")
    if service is not None:
        slos = slos.filter(service=service)
    return slos.order_by("name")


def slo_with_status(*, slo_id: int) -> Slo | None:
    """One SLO (archived too) with its service and status, or None."""
    return Slo.objects.select_related("service", "status").filter(pk=slo_id).first()


def slo_versions(*, slo_id: int, limit: int) -> list[SloVersion]:
    """The newest `limit` versions of an SLO, newest first."""
    return list(SloVersion.objects.filter(slo_id=slo_id).order_by("-version")[:limit])


def slo_version_specs(*, slo_id: int, versions: list[int]) -> dict[int, dict[str, Any]]:
    rows = SloVersion.objects.filter(slo_id=slo_id, version__in=versions).values_list("version", "spec")
    return dict(rows)
