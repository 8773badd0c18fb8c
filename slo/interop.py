"""OpenSLO import and export against the catalog (the pure mapping is slo.openslo)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from controlplane.errors import ValidationFailed
from slo import services
from slo.models import Service, Slo
from slo.models.telemetry import TelemetrySource
from slo.openslo.mapping import LABEL_SOURCE_REF
from slo.spec import Problem, SloSpec


def _queries_for(spec: SloSpec) -> Any:
    from slo.contract import sli_queries

    return sli_queries(spec)


def openslo_export_text(*, slos: list[Slo]) -> str:
    from slo.openslo import export_openslo

    specs = [SloSpec.model_validate(slo.spec) for slo in slos]
    service_names = sorted({slo.service.name for slo in slos})
    service_docs = [
        {"name": s.name, "display_name": s.display_name, "description": s.description, "labels": s.labels}
        for s in Service.objects.filter(name__in=service_names)
    ]
    # the telemetry sources the SLOs' metricSourceRefs name, as DataSource documents
    refs = {spec.labels[LABEL_SOURCE_REF] for spec in specs if spec.labels.get(LABEL_SOURCE_REF)}
    data_sources = [
        {"name": name, "url": url, "tier": tier}
        for name, url, tier in TelemetrySource.objects.filter(name__in=refs)
        .order_by("name")
        .values_list("name", "url", "tier")
    ]
    return export_openslo(specs, service_docs, queries_for=_queries_for, data_sources=data_sources)


def openslo_import(*, actor: Any, text: str, dry_run: bool = False) -> dict[str, Any]:
    """Import services and SLOs from OpenSLO YAML, all or nothing.

    Existing SLOs (same service and name) get a new version; new ones are created.
    Services named by SLOs but not defined in the file must already exist.
    """
    from slo.openslo import import_openslo

    result = import_openslo(text)
    if result.problems:
        raise ValidationFailed(
            "the OpenSLO document cannot be imported",
            problems=result.problems,
            extra={"unsupported": [p.as_dict() for p in result.unsupported]},
        )
    unsupported = [p.as_dict() for p in result.unsupported]
    defined = {doc["name"] for doc in result.services}
    named = {spec.service for spec in result.slos} | {doc["service"] for doc in result.composites}
    for name in sorted(named - defined):
        if not Service.objects.filter(name=name).exists():
            # Referenced but not defined in the file: create it, and say what was assumed.
            result.services.append({"name": name})
            unsupported.append(
                Problem(
                    "services",
                    f"service {name!r} is not defined in the file; created as class 'interactive' "
                    "on the tiers its SLOs name: review its class and tiers",
                    "warning",
                ).as_dict()
            )
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    services_created: list[str] = []
    with transaction.atomic():
        for doc in result.services:
            if not Service.objects.filter(name=doc["name"]).exists():
                tiers = sorted({s.tier for s in result.slos if s.service == doc["name"] and s.tier}) or [
                    "edge",
                    "private_cloud",
                    "public_cloud",
                ]
                services.service_create(
                    actor=actor,
                    data={
                        "name": doc["name"],
                        "display_name": doc.get("display_name", ""),
                        "description": doc.get("description", ""),
                        "labels": doc.get("labels", {}),
                        "service_class": doc.get("service_class", "interactive"),
                        "tiers": tiers,
                    },
                )
                services_created.append(doc["name"])
        for index, spec in enumerate(result.slos):
            data = spec.model_dump(mode="json", exclude_none=True)
            existing = Slo.objects.filter(
                service__name=spec.service, name=spec.name, archived_at__isnull=True
            ).first()
            try:
                if existing is None:
                    slo = services.slo_create(actor=actor, data=data, note="imported from OpenSLO")
                    created.append(
                        {"id": slo.pk, "service": spec.service, "name": spec.name, "version": slo.version}
                    )
                else:
                    slo = services.slo_update(
                        actor=actor, slo_id=existing.pk, data=data, note="imported from OpenSLO"
                    )
                    updated.append(
                        {"id": slo.pk, "service": spec.service, "name": spec.name, "version": slo.version}
                    )
            except ValidationFailed as exc:
                raise ValidationFailed(
                    "the OpenSLO document cannot be imported",
                    problems=[
                        Problem(f"slos[{index}].{p['path']}", f"{spec.service}/{spec.name}: {p['message']}")
                        for p in exc.problems
                    ],
                ) from None
        composites = _import_composites(actor, result.composites)
        datasources = _map_datasources(actor, result)
        if dry_run:
            transaction.set_rollback(True)
    return {
        "dry_run": dry_run,
        "services_created": services_created,
        "created": created,
        "updated": updated,
        "datasources": datasources,
        "composites": composites,
        "unsupported": unsupported,
    }


def _import_composites(actor: Any, documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Create or update the file's composite SLOs, after its SLOs (their members may be among them)."""
    from slo.composites.services import composite_create, composite_update
    from slo.models.composites import Composite

    out: dict[str, list[dict[str, Any]]] = {"created": [], "updated": []}
    for index, doc in enumerate(documents):
        existing = Composite.objects.filter(
            service__name=doc["service"], name=doc["name"], archived_at__isnull=True
        ).first()
        try:
            if existing is None:
                composite = composite_create(actor=actor, data=doc, note="imported from OpenSLO")
            else:
                composite = composite_update(
                    actor=actor, composite_id=existing.pk, data=doc, note="imported from OpenSLO"
                )
        except ValidationFailed as exc:
            raise ValidationFailed(
                "the OpenSLO document cannot be imported",
                problems=[
                    Problem(
                        f"composites[{index}].{p['path']}", f"{doc['service']}/{doc['name']}: {p['message']}"
                    )
                    for p in exc.problems
                ],
            ) from None
        entry = {
            "id": composite.pk,
            "service": doc["service"],
            "name": doc["name"],
            "version": composite.version,
        }
        out["created" if existing is None else "updated"].append(entry)
    return out


def _map_datasources(actor: Any, result: Any) -> list[dict[str, Any]]:
    """Each DataSource of the file, and each metricSourceRef, mapped to the telemetry source of that
    name: matched when it exists, created when the file gives a Prometheus URL and a tier (the
    DataSource's `labels.tier`, or the one tier of the SLOs using it), otherwise reported with why."""
    from slo.models.telemetry import TelemetrySource
    from slo.openslo import LABEL_SOURCE_REF, PROMETHEUS
    from slo.spec import slugify_name
    from slo.telemetry.sources import telemetry_source_create

    documents = {doc["name"]: doc for doc in result.datasources}
    users: dict[str, list[SloSpec]] = {}
    for spec in result.slos:
        if spec.labels.get(LABEL_SOURCE_REF):
            users.setdefault(spec.labels[LABEL_SOURCE_REF], []).append(spec)
    out = []
    for ref in [*documents, *sorted(set(users) - set(documents))]:
        doc, slos = documents.get(ref), users.get(ref, [])
        name = slugify_name(ref)
        entry: dict[str, Any] = {
            "name": ref,
            "telemetry_source": name,
            "slos": [f"{s.service}/{s.name}" for s in slos],
        }
        existing = TelemetrySource.objects.filter(name=name).first()
        tiers = sorted({s.tier for s in slos if s.tier})
        if existing is not None:
            entry["action"] = "matched"
            missed = [f"{s.service}/{s.name}" for s in slos if not _serves(existing, s)]
            if missed:
                entry["reason"] = (
                    f"telemetry source {name!r} (tier {existing.tier}, services "
                    f"{existing.services or 'all'}) does not serve {', '.join(missed)}"
                )
        elif doc is None:
            entry.update(
                action="not created",
                reason=f"no DataSource {ref!r} in the file and no telemetry source named {name!r}: create it",
            )
        elif (doc["type"] or "").lower() != PROMETHEUS.lower():
            entry.update(
                action="not created",
                reason=f"type {doc['type'] or 'not given'!r}: only Prometheus-compatible sources are pulled",
            )
        elif not doc["url"]:
            entry.update(action="not created", reason="connectionDetails give no url")
        elif not (doc["tier"] or len(tiers) == 1):
            entry.update(
                action="not created", reason="no tier: give the DataSource (or the SLOs using it) labels.tier"
            )
        else:
            data = {
                "name": name,
                "url": doc["url"],
                "tier": doc["tier"] or tiers[0],
                "services": sorted({s.service for s in slos}),
            }
            try:
                telemetry_source_create(actor=actor, data=data)
            except ValidationFailed as exc:
                raise ValidationFailed(
                    "the OpenSLO document cannot be imported",
                    problems=[
                        Problem(
                            f"{doc['path']}.spec.connectionDetails",
                            f"DataSource {ref!r}: {p['path']}: {p['message']}",
                        )
                        for p in exc.problems
                    ],
                ) from None
            entry.update(action="created", tier=data["tier"])
        out.append(entry)
    return out


def _serves(source: Any, spec: SloSpec) -> bool:
    if source.services and spec.service not in source.services:
        return False
    if spec.tier:
        return source.tier == spec.tier
    service = Service.objects.filter(name=spec.service).first()
    return service is not None and source.tier in (service.tiers or [])
