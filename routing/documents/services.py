"""Writes for routing policies and cache configs. Every write is one transaction with its audit event.

A write validates the document against the service first: errors reject it with every problem
and its path (nothing stored), warnings are stored with the version. Versions are immutable;
an edit names the version it was based on (`parent_version`) and gets 409 when someone else
wrote a newer one first. Approving and retiring are conditional updates on the version's state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed
from routing.documents import selectors
from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY, Kind
from routing.documents.yamlio import canonical_sha256, json_problems
from routing.models.documents import APPROVED, DRAFT, RETIRED
from slo.models import Service
from slo.spec import Problem


def _prepared(document: Any, service: Service) -> Any:
    """The document to validate and store. `service` may be left out: it is the line's service."""
    problems = json_problems(document)
    if problems:
        raise ValidationFailed("invalid document", problems=problems)
    if isinstance(document, dict) and "service" not in document:
        document = {"service": service.name, **document}
    return document


def _checked(kind: Kind, service: Service, document: Any) -> selectors.Checked:
    checked = selectors.document_check(kind=kind, service=service, document=document)
    if not checked.valid:
        raise ValidationFailed(
            f"invalid {kind.label}: {len(checked.errors)} error(s)",
            problems=checked.errors,
            extra={"warnings": [p.as_dict() for p in checked.warnings], "context": checked.context.as_dict()},
        )
    return checked


def _author(actor: Any) -> tuple[Any, str]:
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return (actor if is_user else None), (actor.get_username() if is_user else str(actor or "system"))


def version_view(version: Any) -> dict[str, Any]:
    """The audit snapshot of a version."""
    return {
        "version": version.version,
        "state": version.state,
        "document": version.document,
        "document_sha256": version.document_sha256,
        "parent_version": version.parent_version,
        "restored_from": version.restored_from,
        "warnings": version.validation.get("warnings", []),
    }


def _new_version(
    kind: Kind,
    line: Any,
    *,
    actor: Any,
    document: Any,
    checked: selectors.Checked,
    note: str,
    parent_version: int | None,
    restored_from: int | None,
    now: datetime,
) -> Any:
    author, author_name = _author(actor)
    return kind.version_model.objects.create(
        line=line,
        version=line.current_version,
        document=document,
        document_sha256=canonical_sha256(document),
        author=author,
        author_name=author_name[:150],
        note=note,
        parent_version=parent_version,
        restored_from=restored_from,
        created_at=now,
        validation={
            "errors": [p.as_dict() for p in checked.errors],
            "warnings": [p.as_dict() for p in checked.warnings],
            "context": checked.context.as_dict(),
        },
        state=DRAFT,
    )


def _create(
    kind: Kind, *, actor: Any, service: Service, document: Any, note: str, now: datetime | None
) -> Any:
    now = now or timezone.now()
    document = _prepared(document, service)
    checked = _checked(kind, service, document)
    try:
        with transaction.atomic():
            if kind.line_model.objects.filter(service=service).exists():
                raise _exists(kind, service)
            line = kind.line_model.objects.create(
                service=service, current_version=1, created_at=now, updated_at=now
            )
            version = _new_version(
                kind,
                line,
                actor=actor,
                document=document,
                checked=checked,
                note=note or "created",
                parent_version=None,
                restored_from=None,
                now=now,
            )
            audit_record(actor=actor, action="create", obj=line, after=version_view(version), note=note)
    except IntegrityError:
        # a concurrent create won the one-line-per-service race
        raise _exists(kind, service) from None
    return line


def _exists(kind: Kind, service: Service) -> Conflict:
    existing = kind.line_model.objects.filter(service=service).values_list("pk", "current_version").first()
    extra = {"id": existing[0], "current_version": existing[1]} if existing else {}
    return Conflict(
        f"service {service.name!r} already has a {kind.label}; write a new version instead",
        problems=[Problem("service", f"already has a {kind.label}")],
        extra=extra,
    )


def _update(
    kind: Kind,
    *,
    actor: Any,
    line_id: int,
    document: Any,
    note: str,
    parent_version: int | None,
    restored_from: int | None = None,
    now: datetime | None = None,
) -> tuple[Any, bool]:
    """(line, created?). An unchanged document makes no new version."""
    now = now or timezone.now()
    with transaction.atomic():
        line = (
            kind.line_model.objects.select_for_update().select_related("service").filter(pk=line_id).first()
        )
        if line is None:
            raise NotFound(f"no such {kind.label}")
        current = kind.version_model.objects.get(line=line, version=line.current_version)
        if parent_version is not None and parent_version != line.current_version:
            raise Conflict(
                f"stale edit: based on version {parent_version}, current is {line.current_version}",
                problems=[Problem("parent_version", f"current version is {line.current_version}")],
                extra={"current_version": line.current_version, "current": current.document},
            )
        document = _prepared(document, line.service)
        checked = _checked(kind, line.service, document)
        if canonical_sha256(document) == current.document_sha256:
            return line, False
        line.current_version += 1
        line.updated_at = now
        line.save(update_fields=["current_version", "updated_at"])
        version = _new_version(
            kind,
            line,
            actor=actor,
            document=document,
            checked=checked,
            note=note,
            parent_version=current.version,
            restored_from=restored_from,
            now=now,
        )
        audit_record(
            actor=actor,
            action="restore" if restored_from else "update",
            obj=line,
            before=version_view(current),
            after=version_view(version),
            note=note,
        )
    return line, True


def _restore(
    kind: Kind,
    *,
    actor: Any,
    line_id: int,
    version: int,
    note: str,
    parent_version: int | None,
    now: datetime | None,
) -> tuple[Any, bool]:
    old = kind.version_model.objects.filter(line_id=line_id, version=version).first()
    if old is None:
        raise NotFound(f"{kind.label} {line_id} has no version {version}")
    return _update(
        kind,
        actor=actor,
        line_id=line_id,
        document=old.document,
        note=note or f"restored version {version}",
        parent_version=parent_version,
        restored_from=version,
        now=now,
    )


def _approve(kind: Kind, *, actor: Any, line_id: int, version: int, now: datetime | None) -> Any:
    """draft -> approved, by someone other than the author, re-validated against today's SLOs."""
    now = now or timezone.now()
    with transaction.atomic():
        row = (
            kind.version_model.objects.select_related("line__service")
            .filter(line_id=line_id, version=version)
            .first()
        )
        if row is None:
            raise NotFound(f"{kind.label} {line_id} has no version {version}")
        if row.author_id is not None and row.author_id == getattr(actor, "pk", None):
            raise Forbidden(
                f"you wrote version {version}; another approver must approve it",
                problems=[Problem("version", "the author cannot approve their own version")],
            )
        # the service's SLOs may have tightened since the version was written
        _checked(kind, row.line.service, row.document)
        approver, approver_name = _author(actor)
        updated = kind.version_model.objects.filter(pk=row.pk, state=DRAFT).update(
            state=APPROVED, approved_by=approver, approved_by_name=approver_name[:150], approved_at=now
        )
        if not updated:
            current = kind.version_model.objects.filter(pk=row.pk).values_list("state", flat=True).first()
            raise IllegalTransition(
                f"version {version} is {current}; only a draft can be approved",
                problems=[Problem("state", f"is {current}")],
            )
        audit_record(
            actor=actor,
            action="approve",
            obj=row.line,
            object_repr=f"{row.line} v{version}",
            before={"version": version, "state": DRAFT},
            after={"version": version, "state": APPROVED},
        )
        row.refresh_from_db()
    return row


def _retire(kind: Kind, *, actor: Any, line_id: int, version: int, now: datetime | None) -> Any:
    """draft or approved -> retired; refused while gateways still run it."""
    now = now or timezone.now()
    with transaction.atomic():
        row = (
            kind.version_model.objects.select_related("line").filter(line_id=line_id, version=version).first()
        )
        if row is None:
            raise NotFound(f"{kind.label} {line_id} has no version {version}")
        running = selectors.line_active_versions(kind=kind, line=row.line).get(version, 0)
        if running:
            raise IllegalTransition(
                f"version {version} is active on {running} gateway(s); release another version first",
                problems=[Problem("version", f"active on {running} gateway(s)")],
            )
        before = row.state
        updated = kind.version_model.objects.filter(pk=row.pk, state__in=[DRAFT, APPROVED]).update(
            state=RETIRED, retired_at=now
        )
        if not updated:
            raise IllegalTransition(
                f"version {version} is already retired", problems=[Problem("state", "is retired")]
            )
        audit_record(
            actor=actor,
            action="retire",
            obj=row.line,
            object_repr=f"{row.line} v{version}",
            before={"version": version, "state": before},
            after={"version": version, "state": RETIRED},
        )
        row.refresh_from_db()
    return row


# --- the public, named functions ------------------------------------------------------------


def routing_policy_create(
    *, actor: Any, service: Service, document: Any, note: str = "", now: datetime | None = None
) -> Any:
    """Create the service's routing policy line with version 1 (409 if it has one)."""
    return _create(ROUTING_POLICY, actor=actor, service=service, document=document, note=note, now=now)


def routing_policy_update(
    *,
    actor: Any,
    line_id: int,
    document: Any,
    note: str = "",
    parent_version: int | None = None,
    now: datetime | None = None,
) -> tuple[Any, bool]:
    """Write a new version (none if the document is unchanged); 409 on a stale `parent_version`."""
    return _update(
        ROUTING_POLICY,
        actor=actor,
        line_id=line_id,
        document=document,
        note=note,
        parent_version=parent_version,
        now=now,
    )


def routing_policy_restore(
    *,
    actor: Any,
    line_id: int,
    version: int,
    note: str = "",
    parent_version: int | None = None,
    now: datetime | None = None,
) -> tuple[Any, bool]:
    """Write an old version's document as a new version (re-validated)."""
    return _restore(
        ROUTING_POLICY,
        actor=actor,
        line_id=line_id,
        version=version,
        note=note,
        parent_version=parent_version,
        now=now,
    )


def routing_policy_approve(*, actor: Any, line_id: int, version: int, now: datetime | None = None) -> Any:
    return _approve(ROUTING_POLICY, actor=actor, line_id=line_id, version=version, now=now)


def routing_policy_retire(*, actor: Any, line_id: int, version: int, now: datetime | None = None) -> Any:
    return _retire(ROUTING_POLICY, actor=actor, line_id=line_id, version=version, now=now)


def cache_config_create(
    *, actor: Any, service: Service, document: Any, note: str = "", now: datetime | None = None
) -> Any:
    """Create the service's cache config line with version 1 (409 if it has one)."""
    return _create(CACHE_CONFIG, actor=actor, service=service, document=document, note=note, now=now)


def cache_config_update(
    *,
    actor: Any,
    line_id: int,
    document: Any,
    note: str = "",
    parent_version: int | None = None,
    now: datetime | None = None,
) -> tuple[Any, bool]:
    """Write a new version (none if the document is unchanged); 409 on a stale `parent_version`."""
    return _update(
        CACHE_CONFIG,
        actor=actor,
        line_id=line_id,
        document=document,
        note=note,
        parent_version=parent_version,
        now=now,
    )


def cache_config_restore(
    *,
    actor: Any,
    line_id: int,
    version: int,
    note: str = "",
    parent_version: int | None = None,
    now: datetime | None = None,
) -> tuple[Any, bool]:
    return _restore(
        CACHE_CONFIG,
        actor=actor,
        line_id=line_id,
        version=version,
        note=note,
        parent_version=parent_version,
        now=now,
    )


def cache_config_approve(*, actor: Any, line_id: int, version: int, now: datetime | None = None) -> Any:
    return _approve(CACHE_CONFIG, actor=actor, line_id=line_id, version=version, now=now)


def cache_config_retire(*, actor: Any, line_id: int, version: int, now: datetime | None = None) -> Any:
    return _retire(CACHE_CONFIG, actor=actor, line_id=line_id, version=version, now=now)
