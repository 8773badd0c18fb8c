"""The Redis broker crashes and restarts (a private redis-server, never the shared 6379): queued
messages are gone, but the outbox rows are not, so the periodic dispatcher delivers everything."""

from __future__ import annotations

import pytest

from routing.fleet.services import gateway_set_desired
from routing.models.fleet import Delivery, Gateway
from tests.faults.conftest import applies_in_log
from tests.faults.support import send_task, wait_until
from tests.gateway.support import good_bundle

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DISPATCH = "routing.tasks.delivery.dispatch_deliveries"


def test_a_broker_restart_loses_queued_messages_but_the_outbox_delivers_everything(
    users,
    register,
    gateway_factory,
    redis_server,
    worker_factory,
    database_url,
):
    processes, gateway_ids = [], []
    for i in range(3):
        process = gateway_factory(f"edge-{i}", start=False)
        credentials = register(f"edge-{i}", push_url=f"http://127.0.0.1:{process.port}/config")
        process.secret = credentials.signing_secret
        processes.append(process.start())
        gateway_ids.append(credentials.gateway.pk)
    worker = worker_factory(database_url=database_url, broker_url=redis_server.url)
    connected = worker.log().count("Connected to redis://")

    # A dispatch queued while no worker consumes it, then the broker crashes: the message is lost.
    worker.stop()
    send_task(redis_server.url, DISPATCH)
    redis_server.stop()
    revisions = gateway_set_desired(
        actor=users["operator"],
        gateway_ids=gateway_ids,
        bundle_for=good_bundle(0, description="after the crash"),
        reason="fault test",
    )
    assert len(revisions) == 3
    with pytest.raises(Exception):  # noqa: B017 - any kombu/redis connection error: the broker is down
        send_task(redis_server.url, DISPATCH)

    worker.start(wait_ready=False)  # starts while the broker is down, and keeps retrying
    redis_server.start()
    wait_until(
        lambda: worker.log().count("Connected to redis://") > connected,
        timeout_s=60,
        what="the worker to connect to the restarted broker",
    )
    assert Delivery.objects.filter(state=Delivery.PENDING).count() == 3  # nothing was delivered yet

    send_task(redis_server.url, DISPATCH)  # beat's next run of the periodic dispatcher
    wait_until(
        lambda: Delivery.objects.filter(state=Delivery.ACKED).count() == 3,
        timeout_s=60,
        what="every delivery ACKed",
    )
    assert Delivery.objects.count() == 3
    for gateway_id, process in zip(gateway_ids, processes, strict=True):
        assert Gateway.objects.get(pk=gateway_id).applied_revision == 1
        assert process.status()["routing_policy_description"] == "after the crash"
        assert applies_in_log(process, 1) == 1


def test_a_broker_restart_under_a_running_worker_is_survived(
    users,
    register,
    gateway_factory,
    redis_server,
    worker_factory,
    database_url,
):
    process = gateway_factory("edge-1", start=False)
    credentials = register("edge-1", push_url=f"http://127.0.0.1:{process.port}/config")
    process.secret = credentials.signing_secret
    process.start()
    worker = worker_factory(database_url=database_url, broker_url=redis_server.url)
    connected = worker.log().count("Connected to redis://")

    redis_server.stop()
    wait_until(
        lambda: "Connection to broker lost" in worker.log() or "Cannot connect to redis" in worker.log(),
        timeout_s=30,
        what="the worker to notice the broker is gone",
    )
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[credentials.gateway.pk],
        bundle_for=good_bundle(0),
        reason="fault test",
    )
    redis_server.start()
    wait_until(
        lambda: worker.log().count("Connected to redis://") > connected,
        timeout_s=60,
        what="the running worker to reconnect",
    )
    send_task(redis_server.url, DISPATCH)
    wait_until(
        lambda: Delivery.objects.get().state == Delivery.ACKED, timeout_s=60, what="the delivery ACKed"
    )
    assert process.status()["applied_revision"] == 1 and applies_in_log(process, 1) == 1
