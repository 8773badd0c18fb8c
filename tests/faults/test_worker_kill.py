"""A Celery worker killed with SIGKILL in the middle of a delivery and of an evaluation.

After a restart nothing is lost (the delivery is ACKed, every SLO is evaluated) and nothing is
applied twice (the gateway applied the revision once; one alert event and one notification per
transition).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from routing.fleet import delivery as delivery_module
from routing.fleet.services import gateway_set_desired
from routing.models.fleet import Delivery, Gateway
from tests.faults.conftest import applies_in_log
from tests.faults.support import send_task, wait_until
from tests.gateway.support import good_bundle

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DISPATCH = "routing.tasks.delivery.dispatch_deliveries"


def test_a_worker_killed_mid_push_loses_nothing_and_the_gateway_applies_once(
    users,
    register,
    gateway_factory,
    proxy_factory,
    redis_server,
    worker_factory,
    database_url,
):
    process = gateway_factory("edge-1", start=False)
    # The worker reaches the gateway through a proxy that can hold the gateway's answer: the gateway
    # has applied the push, the worker has not heard the ACK yet. That is when it dies.
    proxy = proxy_factory("127.0.0.1", process.port)
    credentials = register("edge-1", push_url=f"http://127.0.0.1:{proxy.port}/config")
    process.secret = credentials.signing_secret
    process.start()
    worker = worker_factory(database_url=database_url, broker_url=redis_server.url)

    proxy.hold_responses.set()
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[credentials.gateway.pk],
        bundle_for=good_bundle(0, description="pushed by a dying worker"),
        reason="fault test",
    )
    send_task(redis_server.url, DISPATCH)
    wait_until(
        lambda: process.status()["applied_revision"] == 1, timeout_s=30, what="the gateway to apply rev 1"
    )
    assert Delivery.objects.get().state == Delivery.IN_FLIGHT

    worker.kill()
    proxy.release()

    row = Delivery.objects.get()
    assert row.state == Delivery.IN_FLIGHT and row.attempts == 1  # the claim survived, the outcome did not
    assert Gateway.objects.get(pk=credentials.gateway.pk).applied_revision is None

    worker.start()
    # Time is controlled, not waited for: the in-flight lease (IN_FLIGHT_TIMEOUT_S) has run out.
    Delivery.objects.filter(pk=row.pk).update(
        claimed_at=row.claimed_at - timedelta(seconds=delivery_module.IN_FLIGHT_TIMEOUT_S + 1)
    )
    send_task(redis_server.url, DISPATCH)  # what beat sends every 10 s

    wait_until(
        lambda: Delivery.objects.get(pk=row.pk).state == Delivery.ACKED,
        timeout_s=45,
        what="the re-claimed delivery to be ACKed",
    )
    row.refresh_from_db()
    assert row.attempts == 2
    assert Delivery.objects.count() == 1
    gateway = Gateway.objects.get(pk=credentials.gateway.pk)
    assert gateway.applied_revision == 1 and gateway.desired_revision == 1
    status = process.status()
    assert (
        status["applied_revision"] == 1 and status["routing_policy_description"] == "pushed by a dying worker"
    )
    assert applies_in_log(process, 1) == 1  # the second push was ACKed without applying again


NOW = datetime(2026, 3, 11, 12, 34, tzinfo=UTC)


def _burning_slos(users, count: int) -> list[int]:
    """SLOs whose last 6 hours lose half their requests: the page tier (14.4x over 1h and 5m) fires."""
    from slo.budget.buckets import MinuteCount
    from slo.budget.evaluation import budget_minutes_record
    from slo.services import service_create, slo_create

    service_create(
        actor=users["operator"],
        data={
            "name": "shelf-vision",
            "display_name": "Shelf vision",
            "service_class": "interactive",
            "owner": "vision-team",
            "tiers": ["edge"],
            "labels": {},
        },
    )
    ids = []
    for i in range(count):
        slo = slo_create(
            actor=users["operator"],
            data={
                "name": f"availability-{i}",
                "service": "shelf-vision",
                "sli": {"kind": "availability"},
                "objective": 99.0,
                "window": {"type": "rolling", "days": 28},
            },
        )
        start = NOW - timedelta(hours=6)
        valid = np.full(360, 200.0)
        budget_minutes_record(
            rows=[
                MinuteCount(slo.pk, start + timedelta(minutes=m), 100.0, float(valid[m])) for m in range(360)
            ]
        )
        ids.append(slo.pk)
    return ids


def _raw_connection(database_url: str) -> psycopg.Connection:
    return psycopg.connect(database_url.replace("postgres://", "postgresql://"), autocommit=False)


def test_a_worker_killed_mid_evaluation_re_runs_it_once(users, redis_server, worker_factory, database_url):
    from slo.budget.alerts import channel_matches  # noqa: F401 - the module under test is importable
    from slo.models.budget import AlertEvent, AlertState, Notification, NotificationChannel, SloStatus

    ids = _burning_slos(users, 3)
    NotificationChannel.objects.create(name="ops", kind="generic_webhook", url="http://127.0.0.1:9/hook")
    # Alert rows exist (not firing) so this test can lock one: the evaluation then stops inside its
    # transaction, after claiming and writing statuses, before the transitions commit.
    from slo.models import Slo

    for slo in Slo.objects.filter(pk__in=ids):
        AlertState.objects.create(
            key=f"slo:{slo.pk}:page", service_id=slo.service_id, slo=slo, kind="burn_rate", severity="page"
        )
    worker = worker_factory(database_url=database_url, broker_url=redis_server.url)

    blocker = _raw_connection(database_url)
    watcher = _raw_connection(database_url)
    watcher.autocommit = True
    try:
        blocker.execute("SELECT key FROM slo_alertstate WHERE key = %s FOR UPDATE", [f"slo:{ids[0]}:page"])
        send_task(redis_server.url, "slo.budget.evaluate_chunk", ids, NOW.isoformat())

        def evaluation_blocked() -> bool:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'UPDATE slo_alertstate SET firing%%'"
            ).fetchone()
            return bool(row and row[0])

        wait_until(evaluation_blocked, timeout_s=60, what="the evaluation to block inside its transaction")
        killed = worker.kill_child()  # acks_late + reject_on_worker_lost: the message goes back
    finally:
        blocker.rollback()
        blocker.close()
        watcher.close()

    wait_until(
        lambda: SloStatus.objects.filter(slo_id__in=ids, evaluated_at=NOW).count() == len(ids),
        timeout_s=60,
        what="every SLO evaluated after the kill",
    )
    log = worker.log()
    assert f"pid {killed}" in log or "WorkerLostError" in log or "exited with 'signal 9" in log
    assert log.count("slo.budget.evaluate_chunk") >= 2  # received, lost, received again

    firing = AlertState.objects.filter(slo_id__in=ids, kind="burn_rate", firing=True)
    assert firing.filter(severity="page").count() == len(ids)
    events = AlertEvent.objects.filter(slo_id__in=ids)
    # one event per transition: the killed attempt left nothing behind
    assert events.count() == firing.count()
    assert sorted(events.values_list("state_key", flat=True)) == sorted(firing.values_list("key", flat=True))
    assert Notification.objects.filter(alert_event__in=events).count() == events.count()
    for status in SloStatus.objects.filter(slo_id__in=ids):
        assert status.alert_state == "page" and status.burn_rates["1h"] == pytest.approx(50.0)
