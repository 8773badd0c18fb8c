"""Writes for the SLO catalog. Every write is one transaction with its audit event."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import Conflict, NotFound, ValidationFailed
from slo.models import Service, Slo, SloVersion
from slo.spec import Problem, SloSpec, parse_service_spec, parse_slo_spec


def _service_doc(service: Service) -> dict[str, Any]:
    return {
        "name": service.name,
        "display_name": service.display_name,
        "description": service.description,
        "service_class": service.service_class,
        "owner": service.owner,
        "labels": service.labels,
        "tiers": service.tiers,
        "multi_tenant": service.multi_tenant,
    }


def service_create(*, actor: Any, data: dict[str, Any]) -> Service:
    spec, problems = parse_service_spec(data)
    if spec is None:
        raise ValidationFailed("invalid service", problems=problems)
    if Service.objects.filter(name=spec.name).exists():
        raise ValidationFailed(
            "invalid service", problems=[Problem("name", "a service with this name exists")]
        )
    with transaction.atomic():
        service = Service.objects.create(**spec.model_dump())
        audit_record(actor=actor, action="create", obj=service, after=_service_doc(service))
    return service


def service_update(*, actor: Any, service: Service, data: dict[str, Any]) -> Service:
    merged = {**_service_doc(service), **data}
    spec, problems = parse_service_spec(merged)
    if spec is None:
        raise ValidationFailed("invalid service", problems=problems)
    if spec.name != service.name:
        raise ValidationFailed("invalid service", problems=[Problem("name", "a service cannot be renamed")])
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        before = _service_doc(locked)
        used_tiers = set(
            locked.slos.filter(archived_at__isnull=True).exclude(tier="").values_list("tier", flat=True)
        )
        missing = sorted(used_tiers - set(spec.tiers))
        if missing:
            raise ValidationFailed(
                "invalid service",
                problems=[Problem("tiers", f"SLOs still use tier(s) {', '.join(missing)}")],
            )
        for key, value in spec.model_dump().items():
            setattr(locked, key, value)
        locked.updated_at = timezone.now()
        locked.save()
        audit_record(actor=actor, action="update", obj=locked, before=before, after=_service_doc(locked))
    return locked


def service_delete(*, actor: Any, service: Service) -> None:
    with transaction.atomic():
        if service.slos.exists():
            raise Conflict(
                "the service still has SLOs", problems=[Problem("slos", "archive or move them first")]
            )
        before = _service_doc(service)
        audit_record(actor=actor, action="delete", obj=service, before=before)
        service.delete()


def _validate_slo(data: Any, *, existing: Slo | None) -> tuple[SloSpec, Service]:
    if isinstance(data, dict) and existing is not None:
        data = {"service": existing.service.name, **data}
    spec, problems = parse_slo_spec(data)
    if spec is None:
        raise ValidationFailed("invalid SLO", problems=problems)
    service = Service.objects.filter(name=spec.service).first()
    if service is None:
        raise ValidationFailed(
            "invalid SLO", problems=[Problem("service", f"unknown service {spec.service!r}")]
        )
    if existing is not None and service.pk != existing.service_id:
        raise ValidationFailed(
            "invalid SLO", problems=[Problem("service", "an SLO cannot move to another service")]
        )
    clash = Slo.objects.filter(service=service, name=spec.name)
    if existing is not None:
        clash = clash.exclude(pk=existing.pk)
    if clash.exists():
        raise ValidationFailed(
            "invalid SLO",
            problems=[Problem("name", f"service {service.name!r} already has an SLO named {spec.name!r}")],
        )
    if spec.tier and spec.tier not in service.tiers:
        raise ValidationFailed(
            "invalid SLO",
            problems=[Problem("tier", f"service {service.name!r} does not run on {spec.tier!r}")],
        )
    return spec, service


def _spec_doc(spec: SloSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


def _apply(slo: Slo, spec: SloSpec) -> None:
    slo.name = spec.name
    slo.tier = spec.tier or ""
    slo.sli_kind = spec.sli.kind
    slo.objective = spec.objective
    slo.spec = _spec_doc(spec)


def slo_create(*, actor: Any, data: Any, note: str = "") -> Slo:
    """Create an SLO and its version 1."""
    spec, service = _validate_slo(data, existing=None)
    try:
        with transaction.atomic():
            slo = Slo(service=service)
            _apply(slo, spec)
            slo.save()
            _new_version(slo, actor=actor, note=note or "created")
            audit_record(actor=actor, action="create", obj=slo, after=slo.spec, note=note)
    except IntegrityError:
        # A concurrent create won the unique (service, name) race.
        raise ValidationFailed(
            "invalid SLO", problems=[Problem("name", "an SLO with this name was just created")]
        ) from None
    return slo


def _new_version(slo: Slo, *, actor: Any, note: str, restored_from: int | None = None) -> SloVersion:
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return SloVersion.objects.create(
        slo=slo,
        version=slo.version,
        spec=slo.spec,
        author=actor if is_user else None,
        author_name=actor.get_username() if is_user else "system",
        note=note,
        restored_from=restored_from,
    )


def slo_update(
    *,
    actor: Any,
    slo_id: int,
    data: Any,
    note: str = "",
    parent_version: int | None = None,
    restored_from: int | None = None,
) -> Slo:
    """Make a new version. With `parent_version`, refuse (409) when someone else edited first."""
    with transaction.atomic():
        slo = Slo.objects.select_for_update().select_related("service").filter(pk=slo_id).first()
        if slo is None or slo.archived_at is not None:
            raise NotFound("no such SLO")
        if parent_version is not None and parent_version != slo.version:
            raise Conflict(
                f"stale edit: based on version {parent_version}, current is {slo.version}",
                problems=[Problem("parent_version", f"current version is {slo.version}")],
                extra={"current_version": slo.version, "current": slo.spec},
            )
        spec, _service = _validate_slo(data, existing=slo)
        before = slo.spec
        if _spec_doc(spec) == before:
            return slo  # nothing changed: no new version
        _apply(slo, spec)
        slo.version += 1
        slo.updated_at = timezone.now()
        slo.save()
        _new_version(slo, actor=actor, note=note, restored_from=restored_from)
        audit_record(actor=actor, action="update", obj=slo, before=before, after=slo.spec, note=note)
        # The budget holds minutes converted under the old spec (budgeting method, timeslice
        # target): its feed re-reads every stored minute of this SLO.
        from slo.telemetry.spans import telemetry_spans_mark

        telemetry_spans_mark(slo_ids=[slo.pk])
    return slo


def slo_restore(*, actor: Any, slo_id: int, version: int, note: str = "") -> Slo:
    """Restore an old version's document as a new version."""
    old = SloVersion.objects.filter(slo_id=slo_id, version=version).first()
    if old is None:
        raise NotFound(f"SLO {slo_id} has no version {version}")
    return slo_update(
        actor=actor,
        slo_id=slo_id,
        data=old.spec,
        note=note or f"restored version {version}",
        restored_from=version,
    )


def slo_archive(*, actor: Any, slo_id: int) -> None:
    with transaction.atomic():
        slo = Slo.objects.select_for_update().filter(pk=slo_id, archived_at__isnull=True).first()
        if slo is None:
            raise NotFound("no such SLO")
        slo.archived_at = timezone.now()
        slo.save(update_fields=["archived_at"])
        audit_record(actor=actor, action="archive", obj=slo, before=slo.spec)


def slo_unarchive(*, actor: Any, slo_id: int, note: str = "") -> Slo:
    """Bring an archived SLO back (its name is still taken by it); its versions carry on."""
    with transaction.atomic():
        slo = Slo.objects.select_for_update().filter(pk=slo_id, archived_at__isnull=False).first()
        if slo is None:
            raise NotFound("no such archived SLO")
        slo.archived_at = None
        slo.updated_at = timezone.now()
        slo.save(update_fields=["archived_at", "updated_at"])
        audit_record(actor=actor, action="unarchive", obj=slo, after=slo.spec, note=note)
    return slo
