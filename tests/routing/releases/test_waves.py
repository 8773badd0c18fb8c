"""Wave sizes say what they do: a wave is whole gateways (at least one), so the effective count and
share are shown when a release is created (and by a preview), and a first wave bigger than asked
is refused (400, with the field path) unless the author confirms it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controlplane.errors import ValidationFailed
from routing.models.releases import Release
from routing.releases import lifecycle, machine
from tests.routing.releases.conftest import SERVICE, T0

pytestmark = pytest.mark.django_db

THIRDS = [{"percent": 34, "bake_s": 60}, {"percent": 100, "bake_s": 0}]


def test_the_effective_size_of_every_wave_is_computed():
    sizes = machine.wave_sizes(3, [(34, 60), (100, 0)])
    assert [(s.gateways, s.cumulative_gateways, s.percent) for s in sizes] == [(2, 2, 66.67), (1, 3, 100.0)]
    assert machine.first_wave_oversize(sizes) == sizes[0]
    # a third of three is one gateway: rounding, not a surprise
    assert machine.first_wave_oversize(machine.wave_sizes(3, [(33, 60), (100, 0)])) is None
    # the smallest wave is one gateway: 5% of 3 is a third of the fleet
    assert machine.first_wave_oversize(machine.wave_sizes(3, list(machine.DEFAULT_WAVES))).percent == 33.33
    assert machine.first_wave_oversize(machine.wave_sizes(100, list(machine.DEFAULT_WAVES))) is None
    # a wave that earlier waves already cover is listed as dropped, with no gateway
    dropped = machine.wave_sizes(2, [(50, 1), (60, 2), (100, 3)])
    assert [(s.gateways, s.cumulative_gateways, s.dropped) for s in dropped] == [
        (1, 1, False),
        (1, 2, False),
        (0, 2, True),
    ]


@pytest.fixture
def three(fleet: Any, push: Any, evaluate: Any, users: dict[str, Any]) -> list[Any]:
    gateways = fleet(3)
    for gateway in gateways:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=300)
    evaluate(T0)
    return gateways


def body(**extra: Any) -> dict[str, Any]:
    return {"service": SERVICE, "reason": "ship v2", "routing_policy_version": 2, "waves": THIRDS, **extra}


def test_a_first_wave_bigger_than_asked_is_refused_with_the_path_and_the_sizes(three, api_for):
    refused = api_for("operator").post("/api/v1/releases/", body(), format="json")
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["path"] == "waves[0].percent"
    assert error["message"].startswith("34% of 3 gateways is 2 gateway(s), 66.67% of them")
    preview = refused.json()["wave_preview"]
    assert [(w["gateways"], w["percent"]) for w in preview["waves"]] == [(2, 66.67), (1, 100.0)]
    assert not Release.objects.exists()  # nothing half-stored

    no_waves = {key: value for key, value in body().items() if key != "waves"}  # 5% / 25% / 100%
    default = api_for("operator").post("/api/v1/releases/", no_waves, format="json")
    assert default.status_code == 400
    assert "5% of 3 gateways is 1 gateway(s), 33.33%" in default.json()["errors"][0]["message"]
    bad_flag = api_for("operator").post("/api/v1/releases/", body(confirm_wave_sizes="yes"), format="json")
    assert bad_flag.status_code == 400 and bad_flag.json()["errors"][0]["path"] == "confirm_wave_sizes"


def test_a_confirmed_first_wave_is_created_shown_and_submitted_as_confirmed(three, api_for, users):
    created = api_for("operator").post("/api/v1/releases/", body(confirm_wave_sizes=True), format="json")
    assert created.status_code == 201, created.json()
    release = created.json()
    assert release["wave_sizes_confirmed_for"] == 3
    preview = release["wave_preview"]
    assert preview["gateways"] == 3 and preview["confirmed"] and preview["first_wave_larger_than_requested"]
    assert preview["waves"][0].items() >= {"requested_percent": 34.0, "gateways": 2, "percent": 66.67}.items()
    lifecycle.release_submit(actor=users["operator"], release_id=release["id"], now=T0)
    submitted = api_for("viewer").get(f"/api/v1/releases/{release['id']}/").json()
    assert submitted["state"] == "pending_approval", submitted["paused_reason"]
    assert [(w["requested_percent"], w["percent"], len(w["gateway_ids"])) for w in submitted["waves"]] == [
        (34.0, 66.67, 2),
        (100.0, 100.0, 1),
    ]
    assert submitted["wave_preview"] is None  # the resolved waves say it now


def test_a_confirmation_holds_for_the_fleet_it_was_given_for(three, documents, api_for, users):
    from routing.fleet.services import gateway_register, gateway_set_desired, heartbeat_record

    release_id = (
        api_for("operator")
        .post("/api/v1/releases/", body(confirm_wave_sizes=True), format="json")
        .json()["id"]
    )
    added = gateway_register(
        actor=users["operator"],
        data={"name": "edge-new", "service": SERVICE, "tier": "edge", "region": "eu-west"},
    ).gateway
    bundle = {
        "routing_policy": documents["policy_v1"].document,
        "cache_config": documents["cache_v1"].document,
    }
    gateway_set_desired(
        actor=users["operator"], gateway_ids=[added.pk], bundle_for=bundle, reason="join", now=T0
    )
    heartbeat_record(gateway_id=added.pk, data={"applied_revision": 1}, now=T0)
    # 34% of 4 is 2 gateways, 50%: not what was confirmed for 3
    with pytest.raises(ValidationFailed) as refused:
        lifecycle.release_submit(actor=users["operator"], release_id=release_id, now=T0)
    assert refused.value.problems[0]["path"] == "waves[0].percent"
    assert refused.value.extra["wave_preview"]["gateways"] == 4
    assert Release.objects.get(pk=release_id).state == "draft"
    lifecycle.release_submit(actor=users["operator"], release_id=release_id, confirm_wave_sizes=True, now=T0)
    submitted = Release.objects.get(pk=release_id)
    assert submitted.state != "draft" and submitted.wave_sizes_confirmed_for == 4
    assert [len(w["gateway_ids"]) for w in submitted.waves] == [2, 2]
    bad = api_for("operator").post(
        f"/api/v1/releases/{release_id}/submit/", {"confirm_wave_sizes": 1}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "confirm_wave_sizes"


def test_the_preview_shows_the_plan_and_stores_nothing(three, api_for):
    response = api_for("viewer").post("/api/v1/releases/preview/", body(), format="json")
    assert response.status_code == 200, response.json()
    preview = response.json()
    assert preview["gateways"] == 3 and len(preview["gateway_ids"]) == 3
    assert preview["first_wave_larger_than_requested"] and not preview["confirmed"]
    assert preview["problems"][0]["path"] == "waves[0].percent"
    exact = (
        api_for("viewer")
        .post(
            "/api/v1/releases/preview/",
            body(waves=[{"percent": 33, "bake_s": 0}, {"percent": 100, "bake_s": 0}]),
            format="json",
        )
        .json()
    )
    assert exact["problems"] == [] and exact["waves"][0]["gateways"] == 1
    invalid = api_for("viewer").post(
        "/api/v1/releases/preview/", {"service": SERVICE, "waves": [{"percent": 0}]}, format="json"
    )
    assert invalid.status_code == 400 and "waves[0].percent" in {e["path"] for e in invalid.json()["errors"]}
    assert api_for("outsider").post("/api/v1/releases/preview/", body(), format="json").status_code == 403
    assert not Release.objects.exists()


def test_the_release_page_shows_the_sizes_before_and_after_submission(three, api_for, users, client):
    release_id = (
        api_for("operator")
        .post("/api/v1/releases/", body(confirm_wave_sizes=True), format="json")
        .json()["id"]
    )
    client.force_login(users["viewer"])
    draft = client.get(f"/releases/{release_id}/").content.decode()
    assert "On the 3 gateways its target matches now the first wave is bigger than asked (confirmed)" in draft
    assert '<td class="num">34%</td><td class="num">66.67%</td><td class="num">2 (2 so far)</td>' in draft
    lifecycle.release_submit(actor=users["operator"], release_id=release_id, now=T0)
    submitted = client.get(f"/releases/{release_id}/").content.decode()
    assert "66.67% (asked 34%)" in submitted
