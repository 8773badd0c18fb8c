"""The PostgreSQL connection dropped: requests fail cleanly with 503, nothing is half-written, and
work resumes when the database is back.

The app talks to PostgreSQL through a loopback TCP proxy (tests/faults/support.py) that this test
cuts: every open connection is closed and new ones are refused, or only the COMMIT of a transaction
is dropped (the server never commits it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, close_old_connections, connection
from django.utils import timezone

from controlplane.models import AuditEvent
from routing.fleet import delivery as delivery_module
from routing.fleet.delivery import delivery_dispatch_due
from routing.fleet.push import push_bundle
from routing.fleet.services import gateway_set_desired
from routing.models.fleet import Delivery, Gateway
from slo.models import Service
from tests.faults.conftest import applies_in_log
from tests.faults.support import TcpProxy, send_task, wait_until
from tests.gateway.support import good_bundle

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def db_proxy(transactional_db: Any, proxy_factory: Any) -> Iterator[TcpProxy]:
    """Route this process's Django connection through a proxy to PostgreSQL."""
    settings = connection.settings_dict
    original = (settings["HOST"], settings["PORT"])
    proxy = proxy_factory(settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432))
    connection.close()
    settings["HOST"], settings["PORT"] = "127.0.0.1", str(proxy.port)
    try:
        yield proxy
    finally:
        proxy.restore()
        connection.close()
        settings["HOST"], settings["PORT"] = original
        connection.ensure_connection()


def assert_clean_503(response: Any) -> None:
    assert response.status_code == 503, (response.status_code, response.content[:300])
    assert response["Retry-After"] == "5"
    body = response.json()
    assert "database unavailable" in str(body)
    assert "Traceback" not in response.content.decode() and "psycopg" not in response.content.decode()


def test_api_reads_and_writes_answer_503_while_the_database_is_unreachable(
    api_for, users, service_doc, db_proxy
):
    viewer, operator = api_for("viewer"), api_for("operator")
    assert viewer.get("/api/v1/services/").status_code == 200

    db_proxy.cut()
    assert_clean_503(viewer.get("/api/v1/services/"))
    assert_clean_503(operator.post("/api/v1/services/", service_doc, format="json"))
    assert_clean_503(viewer.get("/api/v1/fleet/"))

    db_proxy.restore()
    # A real request starts with close_old_connections(), which drops the broken connection (Django's
    # test client skips that signal, so this test sends it as the WSGI handler would).
    close_old_connections()
    assert viewer.get("/api/v1/services/").status_code == 200
    assert not Service.objects.filter(name=service_doc["name"]).exists()


def test_a_transaction_whose_commit_is_lost_leaves_no_partial_write(api_for, users, service_doc, db_proxy):
    operator = api_for("operator")
    assert operator.get("/api/v1/me/").status_code == 200  # token checked and touched before the fault
    audit_before = AuditEvent.objects.count()

    db_proxy.cut_on = b"COMMIT"
    response = operator.post("/api/v1/services/", service_doc, format="json")
    assert db_proxy.cut_happened.is_set()
    assert_clean_503(response)

    # neither the service nor its audit event exists: one transaction, rolled back as a whole
    assert not Service.objects.filter(name=service_doc["name"]).exists()
    assert AuditEvent.objects.count() == audit_before
    close_old_connections()
    retried = operator.post("/api/v1/services/", service_doc, format="json")
    assert retried.status_code == 201, retried.content
    assert AuditEvent.objects.filter(action="create", object_type__icontains="service").count() == 1


def test_dashboard_pages_answer_503_not_500(client, users, db_proxy):
    client.force_login(users["viewer"])
    assert client.get("/").status_code == 200
    db_proxy.cut()
    response = client.get("/")
    assert response.status_code == 503 and response["Retry-After"] == "5"


def test_a_gateway_poll_answers_503(register, db_proxy):
    credentials = register("edge-1")
    gateway = credentials.gateway
    db_proxy.cut()
    from django.test import Client

    response = Client().get(
        f"/api/v1/gateways/{gateway.pk}/config", HTTP_AUTHORIZATION=f"Bearer {credentials.token}"
    )
    assert_clean_503(response)


def test_a_dispatch_that_loses_the_database_after_pushing_is_retried_without_a_second_apply(
    users,
    register,
    gateway_factory,
    db_proxy,
):
    process = gateway_factory("edge-1", start=False)
    credentials = register("edge-1", push_url=f"http://127.0.0.1:{process.port}/config")
    process.secret = credentials.signing_secret
    process.start()
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[credentials.gateway.pk],
        bundle_for=good_bundle(0),
        reason="fault test",
    )

    def push_then_lose_the_database(**kwargs: Any) -> Any:
        outcome = push_bundle(**kwargs)  # the real push: the gateway applies and ACKs
        db_proxy.cut()
        return outcome

    with pytest.raises(OperationalError):
        delivery_dispatch_due(push=push_then_lose_the_database)
    assert process.status()["applied_revision"] == 1

    db_proxy.restore()
    connection.close()
    row = Delivery.objects.get()
    assert row.state == Delivery.IN_FLIGHT  # the claim committed; the ACK was never recorded
    later = timezone.now() + timedelta(seconds=delivery_module.IN_FLIGHT_TIMEOUT_S + 1)
    # Signatures are per second (t=<unix s>): a re-push in the same second as the first would be
    # refused as a replay. Real re-claims come IN_FLIGHT_TIMEOUT_S later; step past that second.
    time.sleep(1.1)
    assert delivery_dispatch_due(now=later).outcomes == {"ack": 1}
    row.refresh_from_db()
    assert row.state == Delivery.ACKED and row.attempts == 2
    assert Gateway.objects.get(pk=credentials.gateway.pk).applied_revision == 1
    assert applies_in_log(process, 1) == 1


def test_a_worker_task_fails_while_the_database_is_down_and_the_next_run_delivers(
    users,
    register,
    gateway_factory,
    proxy_factory,
    redis_server,
    worker_factory,
    database_url,
):
    process = gateway_factory("edge-1", start=False)
    credentials = register("edge-1", push_url=f"http://127.0.0.1:{process.port}/config")
    process.secret = credentials.signing_secret
    process.start()
    pg = proxy_factory("127.0.0.1", int(connection.settings_dict.get("PORT") or 5432))
    worker_url = database_url.replace(f":{connection.settings_dict.get('PORT') or 5432}/", f":{pg.port}/")
    worker = worker_factory(database_url=worker_url, broker_url=redis_server.url)
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[credentials.gateway.pk],
        bundle_for=good_bundle(0),
        reason="fault test",
    )

    pg.cut()
    send_task(redis_server.url, "routing.tasks.delivery.dispatch_deliveries")
    wait_until(
        lambda: (
            "dispatch_deliveries" in worker.log()
            and ("OperationalError" in worker.log() or "raised unexpected" in worker.log())
        ),
        timeout_s=45,
        what="the task to fail on the lost database",
    )
    assert Delivery.objects.get().state == Delivery.PENDING  # nothing claimed, nothing lost

    pg.restore()
    send_task(redis_server.url, "routing.tasks.delivery.dispatch_deliveries")  # beat's next run
    wait_until(
        lambda: Delivery.objects.get().state == Delivery.ACKED, timeout_s=45, what="the delivery ACKed"
    )
    assert process.status()["applied_revision"] == 1 and applies_in_log(process, 1) == 1
