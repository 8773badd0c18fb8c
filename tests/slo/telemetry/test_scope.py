"""A gateway's pushes are scoped to its own service and tier: anything else is refused whole (403
with the label's path) and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.errors import Forbidden
from slo.models.telemetry import PushedMinute, SeriesMinute, SliFeed, SliMinute
from slo.telemetry.batch import parse_push_batch
from slo.telemetry.ingest import telemetry_batch_ingest
from slo.telemetry.scope import PushScope, scope_problems
from tests.slo.telemetry.conftest import NOW, batch, requests, standard_minute

SCOPE = PushScope(gateway="edge-1", service="shelf-vision", tier="edge", region="eu-west")
KNOWN = {"shelf-vision", "fraud-score"}


def problems_of(payload: dict[str, Any], scope: PushScope = SCOPE) -> list[tuple[str, str]]:
    parsed, invalid = parse_push_batch(payload, known_services=KNOWN, now_s=NOW.timestamp())
    assert invalid == [] and parsed is not None
    return [(p.path, p.message) for p in scope_problems(payload, parsed, scope)]


def test_a_batch_of_the_gateways_own_series_is_in_scope() -> None:
    payload = batch({0: standard_minute(0), 1: []})
    payload["minutes"][0]["gauges"] = [
        {"name": "inference_queue_depth", "labels": {"service": "shelf-vision", "tier": "edge"}, "value": 2},
        {
            "name": "inference_device_temperature_celsius",
            "labels": {"tier": "edge", "device": "npu0"},
            "value": 61,
        },
        {
            "name": "inference_config_revision",
            "labels": {"gateway": "edge-1", "document_kind": "slo"},
            "value": 4,
        },
    ]
    assert problems_of(payload) == []


def test_each_series_of_another_service_tier_or_gateway_is_named() -> None:
    payload = batch(
        {
            0: [requests("local", "ok", 5), requests("local", "error", 5000, service="fraud-score")],
            1: [requests("local", "ok", 5, tier="public_cloud")],
        }
    )
    payload["minutes"][1]["gauges"] = [
        {
            "name": "inference_memory_headroom_bytes",
            "labels": {"tier": "private_cloud", "device": "gpu0"},
            "value": 1,
        },
        {
            "name": "inference_config_revision",
            "labels": {"gateway": "edge-2", "document_kind": "slo"},
            "value": 4,
        },
    ]
    assert problems_of(payload) == [
        ("minutes[0].counters[1].labels.service", "gateway edge-1 may push only service shelf-vision"),
        ("minutes[1].counters[0].labels.tier", "gateway edge-1 may push only tier edge"),
        ("minutes[1].gauges[0].labels.tier", "gateway edge-1 may push only tier edge"),
        (
            "minutes[1].gauges[1].labels.gateway",
            "gateway edge-1 may push only its own series, not gateway edge-2",
        ),
    ]


def test_a_gateway_registered_for_nothing_may_push_nothing() -> None:
    empty = PushScope(gateway="edge-1", service="", tier="")
    assert [path for path, _ in problems_of(batch({0: [requests("local", "ok", 1)]}), empty)] == [
        "minutes[0].counters[0].labels.service",
        "minutes[0].counters[0].labels.tier",
    ]


@pytest.mark.django_db
def test_an_out_of_scope_batch_is_refused_whole_and_stores_nothing(slos: dict[str, Any]) -> None:
    from slo.services import service_create

    service_create(
        actor=None, data={"name": "fraud-score", "service_class": "interactive", "tiers": ["edge"]}
    )
    telemetry_batch_ingest(source="gateway:7", payload=batch({0: standard_minute(0)}), now=NOW, scope=SCOPE)
    before = [m.objects.count() for m in (SeriesMinute, SliMinute, SliFeed, PushedMinute)]
    mixed = batch({1: standard_minute(1), 2: [requests("local", "error", 5000, service="fraud-score")]})
    with pytest.raises(Forbidden) as refused:
        telemetry_batch_ingest(source="gateway:7", payload=mixed, now=NOW, scope=SCOPE)
    assert refused.value.status == 403
    assert [(p["path"], p["message"]) for p in refused.value.problems] == [
        ("minutes[1].counters[0].labels.service", "gateway edge-1 may push only service shelf-vision")
    ]
    assert [m.objects.count() for m in (SeriesMinute, SliMinute, SliFeed, PushedMinute)] == before
    assert not SeriesMinute.objects.filter(service="fraud-score").exists()
