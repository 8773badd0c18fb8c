"""Create a service and its SLOs from an inference-server template bound to a telemetry source.

Reads each latency histogram's real `le` values from the source (slo.telemetry.discovery), builds
the documents with the pure builder (slo.templates.builder) and stores the service, its SLOs and,
when the source serves a named list of services, the source's list extended by the new service, in
one transaction, each write audited. Nothing is stored when anything is refused.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from controlplane.audit import audit_record
from controlplane.errors import DomainError, NotFound, ValidationFailed
from slo.models.telemetry import TelemetrySource
from slo.services import service_create, slo_create
from slo.spec import Problem
from slo.telemetry.discovery import DiscoveryFailed, histogram_boundaries, metrics_found
from slo.telemetry.sources import source_document
from slo.templates import TEMPLATES
from slo.templates.builder import TemplateProblems, build_plan, counter_names, missing_counter_warnings


class SourceUnavailable(DomainError):
    """The source did not answer the boundary discovery: nothing was created."""

    status = 502


def _source(source: TelemetrySource | str | int) -> TelemetrySource:
    if isinstance(source, TelemetrySource):
        return source
    found = (
        TelemetrySource.objects.filter(pk=source).first()
        if isinstance(source, int)
        else TelemetrySource.objects.filter(name=source).first()
    )
    if found is None:
        raise ValidationFailed(
            "invalid template request", problems=[Problem("source", f"no telemetry source {source!r}")]
        )
    return found


def service_from_template(
    *,
    actor: Any,
    template: str,
    source: TelemetrySource | str | int,
    service_name: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The created service and SLOs, the thresholds picked (requested vs boundary found), the
    SLIs skipped with their reason and warnings (counters with no series on the source yet).
    Raises ValidationFailed (400), NotFound or SourceUnavailable (502)."""
    spec = TEMPLATES.get(template)
    if spec is None:
        raise NotFound(f"no template {template!r}; templates: {', '.join(sorted(TEMPLATES))}")
    src = _source(source)
    boundaries: dict[str, list[float]] = {}
    try:
        for sli in spec.latency_slis():
            for histogram in sli.histograms:
                boundaries[histogram] = histogram_boundaries(src, histogram)
                if boundaries[histogram]:
                    break
        counters = metrics_found(src, counter_names(spec))
    except DiscoveryFailed as exc:
        raise SourceUnavailable(f"source {src.name} did not answer: {exc}") from None
    try:
        plan = build_plan(
            spec, service_name=service_name, tier=src.tier, params=params or {}, boundaries=boundaries
        )
    except TemplateProblems as exc:
        raise ValidationFailed("invalid template request", problems=exc.problems) from None
    note = f"from template {spec.name} on source {src.name}"
    with transaction.atomic():
        service = service_create(actor=actor, data=plan.service)
        slos = [slo_create(actor=actor, data=doc, note=note) for doc in plan.slos]
        locked = TelemetrySource.objects.select_for_update().get(pk=src.pk)
        bound = not locked.services or service.name in locked.services
        if not bound:
            before = source_document(locked)
            locked.services = [*locked.services, service.name]
            locked.save(update_fields=["services"])
            audit_record(
                actor=actor,
                action="update",
                obj=locked,
                before=before,
                after=source_document(locked),
                note=note,
            )
    return {
        "template": spec.name,
        "source": {"id": src.pk, "name": src.name, "tier": src.tier, "services_extended": not bound},
        "service": {"id": service.pk, "name": service.name},
        "slos": [{"id": s.pk, "name": s.name, "sli": s.spec["sli"], "objective": s.objective} for s in slos],
        "thresholds": plan.thresholds,
        "skipped": plan.skipped,
        "warnings": missing_counter_warnings(spec, service.name, counters),
    }
