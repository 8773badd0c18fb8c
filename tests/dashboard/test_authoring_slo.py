"""Creating and editing an SLO in the browser: the API's service and checks, shown at the field."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

VALID = {
    "service": "shelf-vision",
    "name": "edge-latency",
    "display_name": "Edge latency",
    "tier": "edge",
    "sli_kind": "latency",
    "threshold_ms": "300",
    "objective": "99.5",
    "window_type": "rolling",
    "window_days": "28",
    "budgeting_method": "occurrences",
    "min_valid_events": "1",
    "note": "first cut",
}


def field_error(html: str, field: str) -> str:
    """The error text shown under one field (empty when the field has none)."""
    match = re.search(rf'<p id="f-{field}-error" class="field-error"[^>]*>(.*?)</p>', html, re.S)
    return html_lib.unescape(match.group(1).strip()) if match else ""


def test_new_slo_form_is_for_operators_only(page_for: Any, service: Any) -> None:
    assert page_for(None).get("/slos/new/").status_code == 302
    for role in ("viewer", "approver", "outsider"):
        assert page_for(role).get("/slos/new/").status_code == 403, role
        assert page_for(role).post("/slos/new/", VALID).status_code == 403, role
    from slo.models import Slo

    assert not Slo.objects.exists()
    page = page_for("operator").get("/slos/new/")
    assert page.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in page.content
    # the overview offers the form to operators only (a viewer sees no form and no link)
    assert b'href="/slos/new/"' in page_for("operator").get("/").content
    assert b'href="/slos/new/"' not in page_for("viewer").get("/").content


def test_creating_an_slo_stores_version_1_and_an_audit_event(page_for: Any, service: Any, users: Any) -> None:
    from controlplane.models.audit import AuditEvent
    from slo.models import Slo

    response = page_for("operator").post("/slos/new/", VALID)
    slo = Slo.objects.get(name="edge-latency")
    assert response.status_code == 302 and response["Location"] == f"/slos/{slo.pk}/"
    assert slo.version == 1 and slo.tier == "edge" and slo.objective == 99.5
    assert slo.spec["sli"] == {"kind": "latency", "threshold_ms": 300.0}
    assert slo.spec["window"] == {"type": "rolling", "days": 28}
    assert slo.versions.get(version=1).note == "first cut"
    event = AuditEvent.objects.get(action="create", object_type__icontains="slo", object_id=str(slo.pk))
    assert event.actor_id == users["operator"].pk


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"objective": "100"}, "objective", "less than 100"),
        ({"objective": "ninety-nine"}, "objective", "valid number"),
        ({"objective": ""}, "objective", "Field required"),
        ({"threshold_ms": ""}, "sli_kind", "a latency SLI needs threshold_ms"),
        ({"threshold_ms": "-5"}, "threshold_ms", "greater than 0"),
        ({"name": "Edge Latency"}, "name", "should match pattern"),
        ({"window_days": "500"}, "window_days", "less than or equal to 400"),
        ({"tier": "nowhere"}, "tier", "'edge', 'private_cloud' or 'public_cloud'"),
        ({"service": "no-such-service"}, "service", "unknown service"),
    ],
)
def test_a_refused_slo_shows_the_problem_at_its_field_and_stores_nothing(
    page_for: Any, service: Any, change: dict[str, str], field: str, message: str
) -> None:
    from controlplane.models.audit import AuditEvent
    from slo.models import Slo

    audits = AuditEvent.objects.count()
    response = page_for("operator").post("/slos/new/", {**VALID, **change})
    assert response.status_code == 200  # the form again, as Django answers a refused form
    html = response.content.decode()
    assert "Nothing was stored" in html
    assert message in field_error(html, field), html[:3000]
    assert f'id="f-{field}"' in html and re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', html)
    assert re.search(rf'aria-describedby="[^"]*f-{field}-error', html)
    # what was typed stays in the form
    assert 'value="Edge latency"' in html
    assert not Slo.objects.exists() and AuditEvent.objects.count() == audits


def test_the_same_body_gets_the_same_refusal_from_the_api(api_for: Any, service: Any) -> None:
    """No second set of rules: the API, given the form's body, refuses it at the same path."""
    from django.test import RequestFactory

    from web.views.slo_forms import slo_body

    post = RequestFactory().post("/", {**VALID, "threshold_ms": "-5"}).POST
    response = api_for("operator").post("/api/v1/slos/", slo_body(post), format="json")
    assert response.status_code == 400
    assert [p["path"] for p in response.json()["errors"]] == ["sli.threshold_ms"]


def test_a_duplicate_name_is_refused_at_the_name(page_for: Any, service: Any, make_slo: Any) -> None:
    make_slo("edge-latency")
    response = page_for("operator").post("/slos/new/", VALID)
    assert response.status_code == 200
    assert "already has an SLO named 'edge-latency'" in field_error(response.content.decode(), "name")


def test_editing_an_slo_makes_a_new_version_and_keeps_what_the_form_does_not_show(
    page_for: Any, service: Any, make_slo: Any
) -> None:
    from controlplane.models.audit import AuditEvent

    tiers = [{"severity": "page", "budget_percent": 2, "long_window_s": 3600, "short_window_s": 300}]
    slo = make_slo("avail", alert_tiers=tiers, labels={"team": "vision"})
    page = page_for("operator").get(f"/slos/{slo.pk}/edit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="99"' in html and 'name="parent_version" value="1"' in html
    assert f'href="/slos/{slo.pk}/edit/"' in page_for("operator").get(f"/slos/{slo.pk}/").content.decode()
    assert f'href="/slos/{slo.pk}/edit/"' not in page_for("viewer").get(f"/slos/{slo.pk}/").content.decode()

    form = {**VALID, "name": "avail", "tier": "", "sli_kind": "availability", "threshold_ms": ""}
    response = page_for("operator").post(
        f"/slos/{slo.pk}/edit/", {**form, "objective": "99.9", "parent_version": "1", "note": "tighter"}
    )
    assert response.status_code == 302
    slo.refresh_from_db()
    assert slo.version == 2 and slo.objective == 99.9
    assert slo.spec["alert_tiers"][0]["budget_percent"] == 2 and slo.spec["labels"] == {"team": "vision"}
    assert AuditEvent.objects.filter(action="update", object_id=str(slo.pk), note="tighter").exists()

    # an edit based on version 1 after version 2 exists: refused, nothing stored
    stale = page_for("operator").post(
        f"/slos/{slo.pk}/edit/", {**form, "objective": "98", "parent_version": "1"}
    )
    assert stale.status_code == 200
    assert "current version is 2" in field_error(stale.content.decode(), "note")
    slo.refresh_from_db()
    assert slo.version == 2 and slo.objective == 99.9

    # invalid: at the field, nothing stored
    bad = page_for("operator").post(
        f"/slos/{slo.pk}/edit/", {**form, "objective": "0", "parent_version": "2"}
    )
    assert bad.status_code == 200 and "greater than 0" in field_error(bad.content.decode(), "objective")
    slo.refresh_from_db()
    assert slo.version == 2

    for role in ("viewer", "approver"):
        assert page_for(role).get(f"/slos/{slo.pk}/edit/").status_code == 403
        assert (
            page_for(role).post(f"/slos/{slo.pk}/edit/", {**form, "parent_version": "2"}).status_code == 403
        )
    slo.refresh_from_db()
    assert slo.version == 2


def test_forms_need_the_csrf_token(users: Any, service: Any) -> None:
    from django.test import Client

    from slo.models import Slo

    client = Client(enforce_csrf_checks=True)
    client.force_login(users["operator"])
    assert client.post("/slos/new/", VALID).status_code == 403
    assert not Slo.objects.exists()


def test_a_class_scoped_ttft_slo_is_created_and_edited_with_its_class_kept(
    page_for: Any, service: Any
) -> None:
    from slo.models import Slo

    form = {
        **VALID,
        "name": "chat-ttft",
        "sli_kind": "ttft",
        "service_class": "interactive",
        "threshold_ms": "300",
    }
    created = page_for("operator").post("/slos/new/", form)
    assert created.status_code == 302
    slo = Slo.objects.get(name="chat-ttft")
    assert slo.spec["service_class"] == "interactive" and slo.spec["sli"] == {
        "kind": "ttft",
        "threshold_ms": 300.0,
    }
    html = page_for("operator").get(f"/slos/{slo.pk}/edit/").content.decode()
    assert re.search(r'<option value="interactive"[^>]*selected', html)
    detail = page_for("viewer").get(f"/slos/{slo.pk}/").content.decode()
    assert re.search(r"Request class</th><td>interactive<", detail)
    edited = page_for("operator").post(
        f"/slos/{slo.pk}/edit/", {**form, "objective": "99.9", "parent_version": "1", "note": "tighter"}
    )
    assert edited.status_code == 302
    slo.refresh_from_db()
    assert slo.version == 2 and slo.spec["service_class"] == "interactive"
    unknown = page_for("operator").post("/slos/new/", {**form, "name": "x", "service_class": "premium"})
    assert "premium" in field_error(unknown.content.decode(), "service_class") or field_error(
        unknown.content.decode(), "service_class"
    )
