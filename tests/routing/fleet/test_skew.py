"""The model-version skew feed: rows from each gateway's applied bundle into slo's skew alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing.fleet.services import gateway_set_desired, heartbeat_record
from routing.fleet.skew import model_skew_feed, model_skew_rows
from routing.schedules import PERIODIC_TASKS
from slo.models.budget import AlertEvent
from tests.gateway.support import good_bundle

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 11, 12, 35, tzinfo=UTC)


@pytest.fixture
def run(users):
    """run(gateway, model_version, applied=True): give it a desired revision; mark it applied."""

    def apply(gateway, model_version, *, applied=True):
        bundle = {**good_bundle(0), "model_version": model_version}
        revision = gateway_set_desired(
            actor=users["operator"], gateway_ids=[gateway.pk], bundle_for=bundle, reason="test", now=NOW
        )[0]
        if applied:
            heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": revision.revision}, now=NOW)
        return revision

    return apply


def test_edge_and_cloud_on_different_model_versions_fire_once(register, run):
    edge = register("edge-1").gateway
    cloud = register("cloud-1", tier="public_cloud").gateway
    run(edge, "v7")
    run(cloud, "v8")

    assert sorted(model_skew_rows()) == [
        ("shelf-vision", "edge", "v7"),
        ("shelf-vision", "public_cloud", "v8"),
    ]
    assert model_skew_feed(now=NOW) == 1
    assert model_skew_feed(now=NOW + timedelta(minutes=5)) == 0

    event = AlertEvent.objects.get()
    assert (event.kind, event.state) == ("model_skew", "firing")
    assert event.evidence["versions_by_tier"] == {"edge": ["v7"], "public_cloud": ["v8"]}


def test_the_same_version_everywhere_is_no_skew_and_resolves_one(register, run):
    edge = register("edge-1").gateway
    cloud = register("cloud-1", tier="public_cloud").gateway
    run(edge, "v8")
    run(cloud, "v8")

    assert model_skew_feed(now=NOW) == 0
    assert not AlertEvent.objects.exists()

    run(edge, "v7")
    assert model_skew_feed(now=NOW + timedelta(minutes=5)) == 1
    run(edge, "v8")
    assert model_skew_feed(now=NOW + timedelta(minutes=10)) == 1
    assert list(AlertEvent.objects.order_by("at").values_list("state", flat=True)) == ["firing", "resolved"]


def test_it_reads_the_applied_revision_not_the_desired_one(register, run):
    edge = register("edge-1").gateway
    cloud = register("cloud-1", tier="public_cloud").gateway
    run(edge, "v8")
    run(cloud, "v8")
    run(cloud, "v9", applied=False)  # pushed but not yet running

    assert sorted(model_skew_rows()) == [
        ("shelf-vision", "edge", "v8"),
        ("shelf-vision", "public_cloud", "v8"),
    ]
    assert model_skew_feed(now=NOW) == 0


def test_gateways_without_an_applied_revision_or_model_version_are_left_out(register, run):
    edge = register("edge-1").gateway
    cloud = register("cloud-1", tier="public_cloud").gateway
    register("edge-2")  # never configured
    run(edge, "v7")
    run(cloud, None)

    assert model_skew_rows() == [("shelf-vision", "edge", "v7")]
    assert model_skew_feed(now=NOW) == 0
    assert not AlertEvent.objects.exists()


def test_the_periodic_task_runs_the_feed_every_five_minutes(register, run):
    from routing.tasks.delivery import model_skew

    run(register("edge-1").gateway, "v7")
    run(register("cloud-1", tier="public_cloud").gateway, "v8")

    assert model_skew() == 1
    assert model_skew() == 0
    entry = next(e for e in PERIODIC_TASKS if e["task"] == "routing.tasks.delivery.model_skew")
    assert entry["every_s"] == 300
