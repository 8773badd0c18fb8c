"""Four eyes across content and release: nobody who wrote a document version (or registered the
model version) a release ships decides on that release, and a release ships only versions that
passed their own review (approved by someone other than their author)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from controlplane.errors import Conflict, Forbidden
from routing.documents.services import routing_policy_retire, routing_policy_update
from routing.models.documents import RoutingPolicyVersion
from routing.models.releases import GateResult, Release
from routing.releases import lifecycle, model_versions
from tests.routing.releases.conftest import SERVICE, T0

pytestmark = pytest.mark.django_db
WAVES = [{"percent": 25, "bake_s": 60}, {"percent": 100, "bake_s": 0}]


def make_approver(user: Any) -> Any:
    user.groups.add(Group.objects.get_or_create(name="approver")[0])
    return user


def release_by(user: Any, **data: Any) -> Release:
    body = {"service": SERVICE, "reason": "ship", "routing_policy_version": 2, "waves": WAVES, **data}
    release = lifecycle.release_create(actor=user, data=body, now=T0)
    lifecycle.release_submit(actor=user, release_id=release.pk, now=T0)
    release.refresh_from_db()
    assert release.state == "pending_approval", release.paused_reason
    return release


def test_the_author_of_a_shipped_version_cannot_approve_reject_or_resume(healthy, users):
    author = make_approver(users["operator"])  # wrote policy v2 (conftest), and approves releases too
    release = release_by(users["approver2"])  # someone else wrote the release
    for decide in (lifecycle.release_approve, lifecycle.release_reject):
        with pytest.raises(Forbidden) as refused:
            decide(actor=author, release_id=release.pk, comment="looks fine to me", now=T0)
        assert "you wrote routing policy v2, which this release ships" in refused.value.message
    assert not release.approvals.exists()
    lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="reviewed", now=T0)
    assert Release.objects.get(pk=release.pk).state == "approved"


def test_the_author_of_a_shipped_version_cannot_overrule_a_paused_release(fleet, evaluate, users):
    fleet(4)
    evaluate(T0)  # no telemetry: the data-quality gate pauses the release
    author = make_approver(users["operator"])
    release = lifecycle.release_create(
        actor=users["approver2"],
        data={"service": SERVICE, "reason": "ship", "routing_policy_version": 2, "waves": WAVES},
        now=T0,
    )
    lifecycle.release_submit(actor=users["approver2"], release_id=release.pk, now=T0)
    assert Release.objects.get(pk=release.pk).state == "paused"
    with pytest.raises(Forbidden):
        lifecycle.release_resume(actor=author, release_id=release.pk, reason="I know it is fine", now=T0)
    lifecycle.release_resume(actor=users["approver"], release_id=release.pk, reason="new service", now=T0)


def test_the_registrant_of_a_shipped_model_cannot_approve(healthy, users):
    model = model_versions.model_version_create(
        actor=users["operator"],
        data={
            "service": SERVICE,
            "name": "det",
            "version": "1",
            "training_data_snapshot": "d@1",
            "artifact_digest": "sha256:" + "ab" * 32,
        },
    )
    release = release_by(users["approver2"], routing_policy_version=None, model_version=model.pk)
    with pytest.raises(Forbidden) as refused:
        lifecycle.release_approve(
            actor=make_approver(users["operator"]), release_id=release.pk, comment="ok", now=T0
        )
    assert "model det:1" in refused.value.message


def test_a_draft_version_cannot_ride_along(healthy, users, documents, api_for):
    line_id = documents["policy_v2"].line_id
    routing_policy_update(
        actor=users["operator"],
        line_id=line_id,
        document={**documents["policy_v2"].document, "description": "v3: a draft"},
    )
    response = api_for("operator").post(
        "/api/v1/releases/", {"service": SERVICE, "routing_policy_version": 3, "waves": WAVES}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "path": "routing_policy_version",
            "severity": "error",
            "message": "version 3 is draft: a release ships only approved versions (an approver other than its "
            "author approves it first)",
        }
    ]
    assert not Release.objects.exists()


def test_the_documents_gate_refuses_a_release_whose_version_is_not_approved(healthy, users):
    release = lifecycle.release_create(
        actor=users["operator"],
        data={"service": SERVICE, "routing_policy_version": 2, "waves": WAVES},
        now=T0,
    )
    # a draft written before versions needed approval to ship
    RoutingPolicyVersion.objects.filter(line__service__name=SERVICE, version=2).update(state="draft")
    with pytest.raises(Conflict) as refused:
        lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    assert {p["path"] for p in refused.value.problems} == {"gates.documents"}
    gate = GateResult.objects.get(release=release, gate="documents")
    assert gate.outcome == "fail"
    assert {"path": "routing_policy", "message": "version 2 is draft, not approved"} in gate.evidence[
        "problems"
    ]


def test_a_version_retired_after_submission_cannot_be_approved(healthy, users):
    release = release_by(users["operator"])
    routing_policy_retire(actor=users["admin"], line_id=release.routing_policy_version.line_id, version=2)
    with pytest.raises(Conflict) as refused:
        lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="ok", now=T0)
    assert refused.value.problems == [
        {
            "path": "routing_policy_version",
            "severity": "error",
            "message": "version 2 is retired: only approved versions ship",
        }
    ]
    assert Release.objects.get(pk=release.pk).state == "pending_approval" and not release.approvals.exists()


def test_the_release_page_hides_approve_from_a_content_author(healthy, users, client):
    release = release_by(users["approver2"])
    client.force_login(make_approver(users["operator"]))
    body = client.get(f"/releases/{release.pk}/").content.decode()
    assert "Approve</button>" not in body
    assert "You wrote routing policy v2, which this release ships: someone else must approve it." in body
    client.force_login(users["approver"])
    assert "Approve</button>" in client.get(f"/releases/{release.pk}/").content.decode()


def test_approving_stays_allowed_for_whoever_reviewed_the_content(healthy, users):
    # the admin approved policy v2 (conftest): reviewing content is not writing it
    release = release_by(users["operator"])
    lifecycle.release_approve(actor=users["admin"], release_id=release.pk, comment="reviewed twice", now=T0)
    assert Release.objects.get(pk=release.pk).state == "approved"
