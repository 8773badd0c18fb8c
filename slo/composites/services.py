"""Writes for composite SLOs. Every write is one transaction with its version and audit event;
invalid input raises `ValidationFailed` with field paths before anything is stored."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import Conflict, NotFound, ValidationFailed
from slo.composites.spec import CompositeSpec, parse_composite_spec
from slo.models import Service, Slo
from slo.models.composites import Composite, CompositeMember, CompositeVersion
from slo.spec import Problem


def _spec_doc(spec: CompositeSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


def _validate(data: Any, *, existing: Composite | None) -> tuple[CompositeSpec, Service, list[Slo]]:
    if isinstance(data, dict) and existing is not None:
        data = {"service": existing.service.name, **data}
    spec, problems = parse_composite_spec(data)
    if spec is None:
        raise ValidationFailed("invalid composite SLO", problems=problems)
    service = Service.objects.filter(name=spec.service).first()
    if service is None:
        raise ValidationFailed(
            "invalid composite SLO", problems=[Problem("service", f"unknown service {spec.service!r}")]
        )
    if existing is not None and service.pk != existing.service_id:
        raise ValidationFailed(
            "invalid composite SLO",
            problems=[Problem("service", "a composite cannot move to another service")],
        )
    clash = Composite.objects.filter(service=service, name=spec.name)
    if existing is not None:
        clash = clash.exclude(pk=existing.pk)
    if clash.exists():
        raise ValidationFailed(
            "invalid composite SLO",
            problems=[
                Problem("name", f"service {service.name!r} already has a composite named {spec.name!r}")
            ],
        )
    wanted = {(m.service, m.name) for m in spec.members}
    found = {
        (slo.service.name, slo.name): slo
        for slo in Slo.objects.filter(
            archived_at__isnull=True,
            service__name__in={s for s, _ in wanted},
            name__in={n for _, n in wanted},
        ).select_related("service")
    }
    members = []
    problems = []
    for index, member in enumerate(spec.members):
        slo = found.get((member.service, member.name))
        if slo is None:
            problems.append(Problem(f"members[{index}].slo", f"unknown SLO {member.slo!r}"))
        else:
            members.append(slo)
    if problems:
        raise ValidationFailed("invalid composite SLO", problems=problems)
    return spec, service, members


def _apply(composite: Composite, spec: CompositeSpec) -> None:
    composite.name = spec.name
    composite.aggregation = spec.aggregation
    composite.objective = spec.objective
    composite.spec = _spec_doc(spec)


def _write_members(composite: Composite, spec: CompositeSpec, members: list[Slo]) -> None:
    CompositeMember.objects.filter(composite=composite).delete()
    CompositeMember.objects.bulk_create(
        [
            CompositeMember(composite=composite, slo=slo, position=index, weight=member.weight)
            for index, (member, slo) in enumerate(zip(spec.members, members, strict=True))
        ]
    )


def _new_version(
    composite: Composite, *, actor: Any, note: str, restored_from: int | None = None
) -> CompositeVersion:
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return CompositeVersion.objects.create(
        composite=composite,
        version=composite.version,
        spec=composite.spec,
        author=actor if is_user else None,
        author_name=actor.get_username() if is_user else (str(actor) if actor else "system"),
        note=note,
        restored_from=restored_from,
    )


def composite_create(*, actor: Any, data: Any, note: str = "") -> Composite:
    """Create a composite SLO and its version 1."""
    spec, service, members = _validate(data, existing=None)
    try:
        with transaction.atomic():
            composite = Composite(service=service)
            _apply(composite, spec)
            composite.save()
            _write_members(composite, spec, members)
            _new_version(composite, actor=actor, note=note or "created")
            audit_record(actor=actor, action="create", obj=composite, after=composite.spec, note=note)
    except IntegrityError:
        raise ValidationFailed(
            "invalid composite SLO", problems=[Problem("name", "a composite with this name was just created")]
        ) from None
    return composite


def composite_update(
    *,
    actor: Any,
    composite_id: int,
    data: Any,
    note: str = "",
    parent_version: int | None = None,
    restored_from: int | None = None,
) -> Composite:
    """Make a new version. With `parent_version`, refuse (409) when someone else edited first."""
    with transaction.atomic():
        composite = (
            Composite.objects.select_for_update().select_related("service").filter(pk=composite_id).first()
        )
        if composite is None or composite.archived_at is not None:
            raise NotFound("no such composite SLO")
        if parent_version is not None and parent_version != composite.version:
            raise Conflict(
                f"stale edit: based on version {parent_version}, current is {composite.version}",
                problems=[Problem("parent_version", f"current version is {composite.version}")],
                extra={"current_version": composite.version, "current": composite.spec},
            )
        spec, _service, members = _validate(data, existing=composite)
        before = composite.spec
        if _spec_doc(spec) == before:
            return composite  # nothing changed: no new version
        _apply(composite, spec)
        composite.version += 1
        composite.updated_at = timezone.now()
        composite.save()
        _write_members(composite, spec, members)
        _new_version(composite, actor=actor, note=note, restored_from=restored_from)
        audit_record(
            actor=actor, action="update", obj=composite, before=before, after=composite.spec, note=note
        )
    return composite


def composite_restore(*, actor: Any, composite_id: int, version: int, note: str = "") -> Composite:
    """Restore an old version's document as a new version (its members must still exist)."""
    old = CompositeVersion.objects.filter(composite_id=composite_id, version=version).first()
    if old is None:
        raise NotFound(f"composite {composite_id} has no version {version}")
    return composite_update(
        actor=actor,
        composite_id=composite_id,
        data=old.spec,
        note=note or f"restored version {version}",
        restored_from=version,
    )


def composite_archive(*, actor: Any, composite_id: int) -> None:
    """Archive: the composite is no longer evaluated; its versions and history stay."""
    with transaction.atomic():
        composite = (
            Composite.objects.select_for_update().filter(pk=composite_id, archived_at__isnull=True).first()
        )
        if composite is None:
            raise NotFound("no such composite SLO")
        composite.archived_at = timezone.now()
        composite.save(update_fields=["archived_at"])
        audit_record(actor=actor, action="archive", obj=composite, before=composite.spec)
