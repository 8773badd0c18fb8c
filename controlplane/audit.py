"""Writing the audit log. Services call `audit_record` inside their transaction."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from controlplane.middleware import current_request_id
from controlplane.models.audit import AuditEvent


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: Any | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    object_repr: str | None = None,
    before: Any = None,
    after: Any = None,
    note: str = "",
) -> AuditEvent:
    """Append one audit event. `actor` is a user, or None for the system."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk if object_id is None else object_id
        object_repr = object_repr or str(obj)[:200]
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_name=actor.get_username() if is_user else (str(actor) if actor else "system"),
        action=action,
        object_type=object_type or "",
        object_id=str(object_id if object_id is not None else ""),
        object_repr=(object_repr or "")[:200],
        before=_jsonable(before),
        after=_jsonable(after),
        request_id=current_request_id(),
        note=note,
    )


def audit_record_many(*, actor: Any, action: str, entries: list[dict[str, Any]]) -> list[AuditEvent]:
    """Append one audit event per entry in one INSERT (a periodic task that changes thousands of
    rows at once). Each entry: `obj` and optional `before`, `after`, `note`, as for audit_record."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    request_id = current_request_id()
    rows = [
        AuditEvent(
            actor=actor if is_user else None,
            actor_name=actor.get_username() if is_user else (str(actor) if actor else "system"),
            action=action,
            object_type=entry["obj"]._meta.label_lower,
            object_id=str(entry["obj"].pk),
            object_repr=str(entry["obj"])[:200],
            before=_jsonable(entry.get("before")),
            after=_jsonable(entry.get("after")),
            request_id=request_id,
            note=entry.get("note", ""),
        )
        for entry in entries
    ]
    return AuditEvent.objects.bulk_create(rows, batch_size=1000) if rows else []
