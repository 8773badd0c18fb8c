from __future__ import annotations

import pytest

from controlplane.audit import audit_record
from controlplane.models import AuditEvent
from controlplane.models.audit import AuditLogIsAppendOnly


def test_it_returns_the_callers_request_id(api_for):
    response = api_for("viewer").get("/api/v1/me/", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


def test_it_generates_a_request_id_when_missing_or_unsafe(api_for):
    first = api_for("viewer").get("/api/v1/me/")["X-Request-ID"]
    unsafe = api_for("viewer").get("/api/v1/me/", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert len(first) == 32 and len(unsafe) == 32 and first != unsafe


def test_the_audit_log_is_append_only(db):
    event = audit_record(actor=None, action="create", object_type="x", object_id=1, after={"a": 1})
    event.note = "tampered"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(note="x")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).note == ""


def test_the_audit_api_is_read_only_and_filterable(api_for, service, users):
    client = api_for("viewer")
    events = client.get("/api/v1/audit-events/", {"object_type": "slo.service"}).json()["results"]
    assert [e["action"] for e in events] == ["create"]
    assert events[0]["actor_name"] == users["operator"].username
    assert events[0]["after"]["name"] == "shelf-vision"
    event_id = events[0]["id"]
    assert api_for("admin").delete(f"/api/v1/audit-events/{event_id}/").status_code == 405
    assert api_for("admin").post("/api/v1/audit-events/", {}, format="json").status_code == 405
