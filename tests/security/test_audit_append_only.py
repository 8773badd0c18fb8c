"""The audit log is append-only: through the API, the admin and the ORM."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from controlplane.audit import audit_record
from controlplane.models import AuditEvent
from controlplane.models.audit import AuditLogIsAppendOnly

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(users: dict[str, Any], service: Any) -> AuditEvent:
    return AuditEvent.objects.filter(object_type__icontains="service").latest("id")


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "admin"])
def test_the_api_offers_no_way_to_change_or_delete_an_event(
    api_for: Any, event: AuditEvent, role: str
) -> None:
    client = api_for(role)
    url = f"/api/v1/audit-events/{event.pk}/"
    assert client.put(url, {"action": "nothing"}, format="json").status_code in (403, 405)
    assert client.patch(url, {"action": "nothing"}, format="json").status_code in (403, 405)
    assert client.delete(url).status_code in (403, 405)
    assert client.post(
        "/api/v1/audit-events/", {"action": "forged", "object_type": "x", "object_id": "1"}, format="json"
    ).status_code in (403, 405)
    event.refresh_from_db()
    assert event.action == "create"


def test_the_admin_cannot_add_change_or_delete_events(
    client: Any, users: dict[str, Any], event: AuditEvent
) -> None:
    from django.contrib.auth.models import User

    superuser = User.objects.create_superuser("root", "root@example.com", "pw-root-123456")
    client.force_login(superuser)
    base = "/admin/controlplane/auditevent/"
    assert client.get(base).status_code == 200  # it can be read
    assert client.get(base + "add/").status_code == 403
    assert client.post(f"{base}{event.pk}/change/", {"action": "forged"}).status_code in (403, 302)
    assert client.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(
        base, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    ).status_code in (200, 302, 403)
    event.refresh_from_db()
    assert event.action == "create" and AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_orm_refuses_updates_and_deletes(event: AuditEvent) -> None:
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    event.action = "forged"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with (
        pytest.raises(AuditLogIsAppendOnly),
        transaction.atomic(),
    ):  # its own savepoint: bulk_update is atomic
        AuditEvent.objects.bulk_update([event], ["action"])
    assert AuditEvent.objects.get(pk=event.pk).action == "create"


def test_new_events_can_still_be_appended(users: dict[str, Any], event: AuditEvent) -> None:
    before = AuditEvent.objects.count()
    audit_record(actor=users["admin"], action="note", obj=event, after={"ok": True})
    assert AuditEvent.objects.count() == before + 1


def test_the_base_manager_is_not_a_back_door(event: AuditEvent) -> None:
    """Django uses `_base_manager` for related-object access and some internal writes; it is a plain
    Manager unless Meta.base_manager_name says otherwise, so it can update the "append-only" rows."""
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent._base_manager.filter(pk=event.pk).update(action="forged")
    assert AuditEvent.objects.get(pk=event.pk).action == "create"
