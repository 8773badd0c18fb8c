"""Four eyes across content and release: nobody who authored a document version a release ships may
approve that release, and a release ships only versions that passed their own review (a draft cannot
ride along)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.security.live.conftest import assert_still_working
from tests.security.live.support import LiveServer


@pytest.fixture
def shipped(
    users: dict[str, Any],
    documents: dict[str, Any],
    fleet: Any,
    push: Any,
    evaluate: Any,
    policy_doc: dict[str, Any],
) -> dict[str, Any]:
    """Policy v3 written by ada (admin, so also an approver) and approved by abel; policy v4 and
    cache config v2 written by otto and still drafts; a 2-gateway fleet with an hour of good
    telemetry up to now; one approval needed."""
    from routing.documents.services import cache_config_update, routing_policy_approve, routing_policy_update
    from routing.policy import default_cache_config
    from routing.releases.service_settings import release_settings_save

    line = documents["policy_v1"].line
    for author, description in ((users["admin"], "v3: written by ada"), (users["operator"], "v4: a draft")):
        edited = copy.deepcopy(policy_doc)
        edited["description"] = description
        routing_policy_update(actor=author, line_id=line.pk, document=edited)
    routing_policy_approve(actor=users["approver2"], line_id=line.pk, version=3)
    cache = default_cache_config("shelf-vision")
    cache["layers"][0]["ttl"] = "240s"  # v2: a draft
    cache_config_update(actor=users["operator"], line_id=documents["cache_v1"].line.pk, document=cache)
    gateways = fleet(2)
    now = timezone.now().replace(second=0, microsecond=0)
    for gateway in gateways:
        push(gateway, now - timedelta(minutes=60), 60, ok_fast=300)
    evaluate(now)
    release_settings_save(actor=users["admin"], service_name="shelf-vision", data={"required_approvals": 1})
    return {"line": line}


def approvals() -> int:
    from routing.models.releases import ReleaseApproval

    return ReleaseApproval.objects.count()


def test_the_author_of_a_shipped_version_cannot_approve_the_release(
    live: LiveServer,
    shipped: dict[str, Any],
    as_role: Any,
) -> None:
    operator = as_role("operator", ip="10.1.0.1")
    created = operator.post(
        "/api/v1/releases/",
        json={
            "service": "shelf-vision",
            "reason": "ship v3",
            "routing_policy_version": 3,
            "waves": [{"percent": 100, "bake_s": 0}],
        },
    )
    assert created.status_code == 201, created.text[:500]
    release_id = created.json()["id"]
    submitted = operator.post(f"/api/v1/releases/{release_id}/submit/")
    assert submitted.status_code == 200 and submitted.json()["state"] == "pending_approval", submitted.text[
        :800
    ]

    # ada wrote v3: she is an approver, and not the release's author, but her approval is refused
    refused = as_role("admin", ip="10.1.0.2").post(
        f"/api/v1/releases/{release_id}/approve/", json={"comment": "lgtm"}
    )
    assert refused.status_code == 403, (refused.status_code, refused.text[:500])
    assert "author" in refused.text, refused.text[:500]
    assert approvals() == 0
    state = as_role("viewer").get(f"/api/v1/releases/{release_id}/").json()["state"]
    assert state == "pending_approval"

    # someone who wrote none of it approves
    approved = as_role("approver", ip="10.1.0.3").post(
        f"/api/v1/releases/{release_id}/approve/", json={"comment": "reviewed"}
    )
    assert approved.status_code == 200 and approved.json()["state"] == "approved", approved.text[:500]
    assert_still_working(live, as_role("viewer"))


@pytest.mark.parametrize(
    "ride_along",
    [
        {"routing_policy_version": 4},  # a draft
        {"routing_policy_version": 3, "cache_config_version": 2},  # an approved policy, a draft cache config
    ],
)
def test_a_draft_version_cannot_ride_along(
    live: LiveServer,
    shipped: dict[str, Any],
    as_role: Any,
    ride_along: dict[str, int],
) -> None:
    from routing.models.releases import Release

    operator = as_role("operator")
    created = operator.post(
        "/api/v1/releases/",
        json={
            "service": "shelf-vision",
            "reason": "sneak a draft in",
            "waves": [{"percent": 100, "bake_s": 0}],
            **ride_along,
        },
    )
    if created.status_code == 201:
        # refused at submission at the latest: it never waits for approval
        release_id = created.json()["id"]
        submitted = operator.post(f"/api/v1/releases/{release_id}/submit/")
        assert 400 <= submitted.status_code < 500, (submitted.status_code, submitted.text[:800])
        assert Release.objects.get(pk=release_id).state == "draft"
        assert "draft" in submitted.text
    else:
        assert created.status_code == 400, (created.status_code, created.text[:500])
        assert "draft" in created.text and (
            "routing_policy_version" in created.text or "cache_config_version" in created.text
        )
        assert not Release.objects.exists()
    assert approvals() == 0
    # an approved version alone ships
    fine = operator.post(
        "/api/v1/releases/",
        json={
            "service": "shelf-vision",
            "reason": "v3 only",
            "routing_policy_version": 3,
            "waves": [{"percent": 100, "bake_s": 0}],
        },
    )
    assert fine.status_code == 201, fine.text[:500]
    assert_still_working(live, as_role("viewer"))
