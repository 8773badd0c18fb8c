from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from routing.fleet.health import gateway_health
from routing.fleet.services import gateway_set_desired, heartbeat_record
from routing.models.fleet import Gateway
from tests.gateway.support import good_bundle


def _fleet(users, register):
    gateways = {
        "healthy": register("edge-1", region="eu-west").gateway,
        "drifted": register("edge-2", region="eu-west").gateway,
        "nacked": register("edge-3", region="eu-central").gateway,
        "stale": register("cloud-1", tier="private_cloud", region="eu-west").gateway,
    }
    ids = [g.pk for g in gateways.values()]
    gateway_set_desired(actor=users["operator"], gateway_ids=ids, bundle_for=good_bundle(0), reason="r1")
    gateway_set_desired(actor=users["operator"], gateway_ids=ids, bundle_for=good_bundle(0), reason="r2")
    now = timezone.now()
    heartbeat_record(gateway_id=gateways["healthy"].pk, data={"applied_revision": 2}, now=now)
    heartbeat_record(gateway_id=gateways["drifted"].pk, data={"applied_revision": 1}, now=now)
    heartbeat_record(
        gateway_id=gateways["nacked"].pk,
        data={"applied_revision": 1, "nack": {"revision": 2, "error": "no backend for public_cloud"}},
        now=now,
    )
    heartbeat_record(
        gateway_id=gateways["stale"].pk, data={"applied_revision": 2}, now=now - timedelta(minutes=5)
    )
    return gateways


def test_the_fleet_view_shows_health_nacks_and_version_spread(api_for, users, register):
    _fleet(users, register)
    body = api_for("viewer").get("/api/v1/fleet/").json()
    assert body["summary"]["by_health"] == {"drifted": 1, "healthy": 1, "nacked": 1, "stale": 1}
    by_name = {row["name"]: row for row in body["results"]}
    assert by_name["edge-3"]["last_nack"]["error"] == "no backend for public_cloud"
    assert by_name["edge-2"]["desired_revision"] == 2 and by_name["edge-2"]["applied_revision"] == 1
    spread = {
        (row["tier"], row["region"]): row["applied_revisions"] for row in body["summary"]["version_spread"]
    }
    assert spread[("edge", "eu-west")] == {"1": 1, "2": 1}
    assert spread[("private_cloud", "eu-west")] == {"2": 1}


def test_the_fleet_view_filters_by_health_tier_and_region(api_for, users, register):
    _fleet(users, register)
    client = api_for("viewer")
    assert [r["name"] for r in client.get("/api/v1/fleet/?health=nacked").json()["results"]] == ["edge-3"]
    assert client.get("/api/v1/fleet/?tier=edge&region=eu-west").json()["count"] == 2
    assert client.get("/api/v1/fleet/?health=sideways").status_code == 400
    assert api_for(None).get("/api/v1/fleet/").status_code == 401
    assert api_for("outsider").get("/api/v1/fleet/").status_code == 403


def test_the_fleet_view_does_not_query_per_gateway(api_for, users, register, django_assert_max_num_queries):
    for index in range(15):
        register(f"edge-{index}")
    client = api_for("viewer")
    client.get("/api/v1/fleet/")
    with django_assert_max_num_queries(7):
        assert client.get("/api/v1/fleet/").json()["count"] == 15


def test_health_is_stale_without_a_recent_heartbeat_whatever_was_applied():
    now = timezone.now()
    common = {"desired_revision": 3, "applied_revision": 3, "last_nack_revision": None, "now": now}
    assert gateway_health(last_heartbeat_at=now, **common) == "healthy"
    assert gateway_health(last_heartbeat_at=now - timedelta(seconds=61), **common) == "stale"
    assert gateway_health(last_heartbeat_at=None, **common) == "stale"
    assert Gateway._meta.get_field("desired_revision").null
