"""Creating a release in the browser: a preview of its waves and gate predictions, a draft, and
submitting it, through the release services; by role, with the refusals at the fields."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def field_error(page: Any, field: str) -> str:
    match = re.search(
        rf'<p id="f-{field}-error" class="field-error"[^>]*>(.*?)</p>', page.content.decode(), re.S
    )
    return html_lib.unescape(match.group(1).strip()) if match else ""


@pytest.fixture
def approved_v2(documents: dict[str, Any], users: dict[str, Any]) -> Any:
    from routing.documents.services import routing_policy_approve

    v2 = documents["policy_v2"]
    routing_policy_approve(actor=users["approver"], line_id=v2.line_id, version=2)
    v2.refresh_from_db()
    return v2


def form(**change: str) -> dict[str, str]:
    base = {
        "service": "shelf-vision",
        "kind": "normal",
        "title": "ship v2",
        "reason": "new words",
        "routing_policy_version": "2",
        "wave_1_percent": "25",
        "wave_1_bake_s": "60",
        "wave_2_percent": "50",
        "wave_2_bake_s": "60",
        "wave_3_percent": "100",
        "wave_3_bake_s": "0",
        "action": "preview",
    }
    base.update(change)
    return base


def stored() -> tuple[int, int, int]:
    from controlplane.models.audit import AuditEvent
    from routing.models.releases import GateResult, Release

    return Release.objects.count(), GateResult.objects.count(), AuditEvent.objects.count()


def test_the_release_form_is_for_operators(page_for: Any, approved_v2: Any) -> None:
    for role in ("viewer", "approver", "outsider"):
        assert page_for(role).get("/releases/new/").status_code == 403, role
        assert page_for(role).post("/releases/new/", form(action="create")).status_code == 403
    assert stored()[0] == 0
    page = page_for("operator").get("/releases/new/?service=shelf-vision&routing_policy_version=2")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="2"' in body and "approved versions of shelf-vision: v2" in body
    assert 'href="/releases/new/"' in page_for("operator").get("/releases/").content.decode()
    assert 'href="/releases/new/"' not in page_for("viewer").get("/releases/").content.decode()


def test_preview_shows_effective_waves_and_gate_predictions_and_stores_nothing(
    page_for: Any, approved_v2: Any, gateways: dict[str, Any]
) -> None:
    """Four gateways; 25/50/100% give 1, 1 and 2 gateways (whole gateways, cumulative)."""
    before = stored()
    page = page_for("operator").post("/releases/new/", form())
    assert page.status_code == 200
    body = html_lib.unescape(page.content.decode())
    assert 'data-preview-gateways="4"' in body
    rows = re.findall(r"<td class=\"num\">(\d+) \((\d+) so far\)</td>", body)
    assert rows == [("1", "1"), ("1", "2"), ("2", "4")]
    gates = re.findall(
        r'<tr data-gate="([a-z_]+)"><td>[^<]*</td><td class="[^"]*"><strong>([a-z_]+)</strong>', body
    )
    assert [g for g, _ in gates] == ["documents", "error_budget", "paging", "data_quality", "simulation"]
    outcome = dict(gates)
    # the documents gate: the new bundles of drifted and nacked gateways validate; cloud-new runs
    # nothing yet, so its bundle lacks a cache config -> fail, as a submission would say
    from routing.releases.lifecycle import release_preview

    predicted = release_preview(
        data={
            "service": "shelf-vision",
            "routing_policy_version": 2,
            "waves": [
                {"percent": 25.0, "bake_s": 60},
                {"percent": 50.0, "bake_s": 60},
                {"percent": 100.0, "bake_s": 0},
            ],
        },
        predict_gates=True,
    )
    assert outcome == {g["gate"]: g["outcome"] for g in predicted["gates"]}
    assert stored() == before

    # a first wave bigger than asked: 10% of 4 gateways is 1 gateway (25%)
    page = page_for("operator").post("/releases/new/", form(wave_1_percent="10"))
    assert "ask for 25%" in field_error(page, "wave_1_percent")
    assert stored() == before


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"wave_2_percent": "half"}, "wave_2_percent", "a number above the previous wave"),
        ({"wave_1_bake_s": "-1"}, "wave_1_bake_s", "whole seconds from 0 to 604800"),
        ({"routing_policy_version": "1"}, "routing_policy_version", "version 1 is draft"),
        ({"routing_policy_version": "9"}, "routing_policy_version", "has no version 9"),
        ({"service": ""}, "service", "unknown service"),
        ({"kind": "hotfix", "reason": ""}, "reason", "needs a reason"),
    ],
)
def test_a_refused_release_shows_the_problem_at_its_field(
    page_for: Any, approved_v2: Any, change: dict[str, str], field: str, message: str
) -> None:
    before = stored()
    for action in ("preview", "create"):
        page = page_for("operator").post("/releases/new/", form(action=action, **change))
        assert page.status_code == 200
        assert message in field_error(page, field), (action, page.content.decode()[-4000:])
        assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', page.content.decode())
    assert stored() == before


def test_create_stores_a_draft_and_submit_runs_the_gates(
    page_for: Any, approved_v2: Any, pending_release: Any, users: dict[str, Any]
) -> None:
    """pending_release's two gateways (an hour of good telemetry each) are freed by rejecting it;
    the new release goes to them."""
    from controlplane.models.audit import AuditEvent
    from routing.models.releases import Release
    from routing.releases.lifecycle import release_reject

    release_reject(actor=users["approver"], release_id=pending_release.pk, comment="make room")
    response = page_for("operator").post(
        "/releases/new/",
        form(action="create", wave_1_percent="50", wave_2_percent="100", wave_3_percent="", wave_3_bake_s=""),
    )
    assert response.status_code == 302
    release = Release.objects.exclude(pk=pending_release.pk).get()
    assert response["Location"] == f"/releases/{release.pk}/"
    assert release.state == "draft" and release.author_id == users["operator"].pk
    assert release.wave_plan == [{"percent": 50.0, "bake_s": 60}, {"percent": 100.0, "bake_s": 60}]
    assert AuditEvent.objects.filter(
        action="create", object_id=str(release.pk), actor=users["operator"]
    ).exists()

    page = page_for("operator").get(f"/releases/{release.pk}/").content.decode()
    submit = f'action="/releases/{release.pk}/submit/"'
    assert submit in page
    assert submit not in page_for("viewer").get(f"/releases/{release.pk}/").content.decode()
    assert page_for("viewer").post(f"/releases/{release.pk}/submit/").status_code == 403
    assert page_for("approver").post(f"/releases/{release.pk}/submit/").status_code == 403
    release.refresh_from_db()
    assert release.state == "draft"

    response = page_for("operator").post(f"/releases/{release.pk}/submit/")
    assert response.status_code == 302
    release.refresh_from_db()
    assert release.state in ("pending_approval", "paused"), release.state
    assert release.gate_results.filter(stage="submission").count() == 5
