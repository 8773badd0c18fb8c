"""A heartbeat on PostgreSQL is one statement (routing.fleet.heartbeat) that stores exactly what the
ORM path stores: the gateway's bookkeeping, the health sample, and open pushes of the applied revision
acked and older ones superseded, in one transaction; a NACK still goes through the audited ORM path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from controlplane.errors import NotFound
from controlplane.models import AuditEvent
from routing.fleet.services import gateway_set_desired, heartbeat_record
from routing.models.capacity import GatewayHealthSample
from routing.models.fleet import Delivery, Gateway
from tests.gateway.support import good_bundle

pytestmark = pytest.mark.django_db

HEALTH = {
    "temperature_c": 61.5,
    "memory_headroom_pct": 38,
    "queue_depth": 2,
    "active_workers": 4,
    "backhaul_rtt_ms": 35.0,
    "backhaul_healthy": True,
    "request_age_ms": 30.0,
    "accelerator_util_pct": 52.4,
    "p95_ms": 118.0,
    "vendor_extra": {"fan": "ok"},
}


def _three_revisions(users: Any, gateway: Gateway) -> None:
    """Revisions 1..3 with their pushes left open (a poll-only gateway: nothing dispatches them)."""
    for _ in range(3):
        gateway_set_desired(
            actor=users["operator"],
            gateway_ids=[gateway.pk],
            bundle_for=good_bundle(0),
            reason="t",
            validate=False,
        )
    Delivery.objects.filter(gateway=gateway).update(state=Delivery.PENDING, finished_at=None, last_error="")


def _stored(gateway: Gateway) -> dict[str, Any]:
    row = Gateway.objects.get(pk=gateway.pk)
    samples = list(
        GatewayHealthSample.objects.filter(gateway_id=gateway.pk).values(
            "at",
            "queue_depth",
            "active_workers",
            "temperature_c",
            "memory_headroom_pct",
            "backhaul_rtt_ms",
            "backhaul_healthy",
            "request_age_ms",
            "accelerator_util_pct",
            "p95_ms",
        )
    )
    deliveries = sorted(
        Delivery.objects.filter(gateway=gateway).values_list(
            "revision__revision", "state", "finished_at", "last_error"
        )
    )
    return {
        "gateway": (row.last_heartbeat_at, row.applied_revision, row.applied_etag, row.device_health),
        "samples": samples,
        "deliveries": deliveries,
    }


@pytest.mark.parametrize(
    "data",
    [
        {"applied_revision": 2, "config_etag": '"rev-2"', "health": HEALTH},
        {"applied_revision": 3, "health": {"queue_depth": 1}},
        {"applied_revision": None, "health": HEALTH},
        {"applied_revision": 1},
        {},
    ],
)
def test_one_statement_stores_what_the_orm_path_stores(
    users: Any, register: Any, monkeypatch: Any, django_assert_num_queries: Any, data: dict[str, Any]
) -> None:
    fast, orm = register("edge-1", push_url="").gateway, register("edge-2", push_url="").gateway
    _three_revisions(users, fast)
    _three_revisions(users, orm)
    now = timezone.now()
    with django_assert_num_queries(1):
        desired = heartbeat_record(gateway_id=fast.pk, data=data, now=now)
    assert desired == 3
    with monkeypatch.context() as patched:
        patched.setattr(connection, "vendor", "sqlite")  # the embedded mode's ORM path, on this database
        assert heartbeat_record(gateway_id=orm.pk, data=data, now=now) == 3
    assert _stored(fast) == _stored(orm)
    applied = data.get("applied_revision")
    expected = {
        r: ("acked" if r == applied else "superseded" if applied is not None and r < applied else "pending")
        for r in (1, 2, 3)
    }
    assert {r: state for r, state, _, _ in _stored(fast)["deliveries"]} == expected
    assert len(_stored(fast)["samples"]) == (1 if data.get("health") else 0)


def test_an_unknown_gateway_is_404_and_nothing_is_written(users: Any, register: Any) -> None:
    known = register("edge-1", push_url="").gateway
    with pytest.raises(NotFound):
        heartbeat_record(gateway_id=known.pk + 1000, data={"applied_revision": 1, "health": HEALTH})
    assert not GatewayHealthSample.objects.exists()


def test_a_nack_is_audited_through_the_orm_path(users: Any, register: Any) -> None:
    gateway = register("edge-1", push_url="").gateway
    _three_revisions(users, gateway)
    heartbeat_record(
        gateway_id=gateway.pk,
        data={"applied_revision": 2, "nack": {"revision": 3, "error": "repeated hop"}},
        now=timezone.now() + timedelta(seconds=1),
    )
    row = Gateway.objects.get(pk=gateway.pk)
    assert (row.last_nack_revision, row.last_nack_error, row.applied_revision) == (3, "repeated hop", 2)
    assert AuditEvent.objects.filter(action="nack", object_id=str(gateway.pk)).count() == 1
