"""Cache alerts use the thresholds of the service's own cache config, not fixed defaults."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from routing.documents.services import cache_config_approve, cache_config_create, cache_config_update
from routing.fleet.cache_alerts import cache_alert_thresholds, cache_alerts_feed
from routing.fleet.services import gateway_set_desired, heartbeat_record
from routing.policy import default_cache_config
from routing.schedules import PERIODIC_TASKS
from slo.budget.cache_feed import CacheThresholds
from slo.models.budget import AlertEvent
from slo.schedules import PERIODIC_TASKS as SLO_PERIODIC_TASKS
from tests.gateway.support import good_bundle
from tests.slo.budget.test_cache_feed import HEALTHY, history

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
MILD_DROP = {"hit": 6, "miss": 4}  # 0.6 against 0.8: a 25% drop
STALE = {"hit": 90, "stale_hit": 4, "miss": 6}  # 4 of 94 answers stale: 4.3%


def config(*, drop_pct=20, stale_max=0.02):
    document = default_cache_config("shelf-vision")
    document["alerts"] = {"hit_rate_drop_pct": drop_pct, "stale_hit_rate_max": stale_max}
    return document


def test_a_service_without_a_cache_config_keeps_the_defaults(service):
    history(NOW, current=MILD_DROP)

    assert cache_alert_thresholds() == {}
    assert cache_alerts_feed(now=NOW) == 0  # 25% is within the default 30%


def test_the_cache_config_hit_rate_drop_threshold_fires_where_the_default_would_not(service, users):
    cache_config_create(actor=users["operator"], service=service, document=config(drop_pct=20))
    history(NOW, current=MILD_DROP)

    assert cache_alert_thresholds() == {
        "shelf-vision": CacheThresholds(max_relative_drop=0.2, max_stale_rate=0.02)
    }
    assert cache_alerts_feed(now=NOW) == 1
    event = AlertEvent.objects.get()
    assert (event.kind, event.state) == ("cache_hit_drop", "firing")
    assert event.evidence["max_relative_drop"] == pytest.approx(0.2)
    assert cache_alerts_feed(now=NOW) == 0  # one transition, however often it runs


def test_a_looser_stale_hit_threshold_silences_what_the_default_would_fire(service, users):
    cache_config_create(actor=users["operator"], service=service, document=config(stale_max=0.1))
    history(NOW, current=STALE)
    assert cache_alerts_feed(now=NOW) == 0

    # the same traffic under a stricter config fires
    line = service.cache_config
    cache_config_update(
        actor=users["operator"], line_id=line.pk, document=config(stale_max=0.01), parent_version=1
    )
    assert cache_alerts_feed(now=NOW + timedelta(minutes=1)) == 1
    assert AlertEvent.objects.get().kind == "stale_hits"


def test_the_version_the_fleet_runs_speaks_for_the_service_over_newer_drafts(service, users, register):
    cache_config_create(actor=users["operator"], service=service, document=config(drop_pct=50))
    cache_config_approve(actor=users["approver"], line_id=service.cache_config.pk, version=1)
    cache_config_update(
        actor=users["operator"],
        line_id=service.cache_config.pk,
        document=config(drop_pct=10),
        parent_version=1,
    )
    # the newest approved wins while nothing runs anywhere; drafts never do
    assert cache_alert_thresholds()["shelf-vision"].max_relative_drop == pytest.approx(0.5)

    gateway = register("edge-1").gateway
    bundle = {**good_bundle(0), "cache_config": service.cache_config.versions.get(version=2).document}
    revision = gateway_set_desired(
        actor=users["operator"], gateway_ids=[gateway.pk], bundle_for=bundle, reason="test", now=NOW
    )[0]
    heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": revision.revision}, now=NOW)

    assert cache_alert_thresholds()["shelf-vision"].max_relative_drop == pytest.approx(0.1)


def test_no_current_traffic_is_no_verdict_whatever_the_threshold(service, users):
    from tests.slo.budget.test_cache_feed import lookups

    cache_config_create(actor=users["operator"], service=service, document=config(drop_pct=1))
    lookups(NOW - timedelta(hours=5), 120, per_minute=HEALTHY)

    assert cache_alerts_feed(now=NOW) == 0
    assert not AlertEvent.objects.exists()


def test_one_periodic_task_runs_cache_alerts_and_it_is_routings(service, users):
    from routing.tasks.delivery import cache_alerts

    cache_config_create(actor=users["operator"], service=service, document=config(drop_pct=20))
    history(timezone.now().replace(second=0, microsecond=0), current=MILD_DROP)

    assert cache_alerts() == 1
    assert cache_alerts() == 0
    entries = [e for e in PERIODIC_TASKS + SLO_PERIODIC_TASKS if "cache alerts" in e["name"]]
    assert [(e["task"], e["every_s"]) for e in entries] == [("routing.tasks.delivery.cache_alerts", 300)]
