"""Desired revisions, the delivery outbox, and the worker against real gateway processes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane.errors import ValidationFailed
from controlplane.models import AuditEvent
from routing.fleet import delivery as delivery_module
from routing.fleet.delivery import backoff_s, delivery_dispatch_due, fleet_reconcile
from routing.fleet.selectors import gateway_health_of
from routing.fleet.services import gateway_set_desired, heartbeat_record
from routing.models.fleet import Delivery, Gateway, GatewayRevision
from tests.gateway.support import good_bundle, invalid_bundle

pytestmark = pytest.mark.django_db(transaction=False)


def _desired(users, gateway, bundle, **kwargs):
    kwargs.setdefault("validate", False)
    return gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[gateway.pk],
        bundle_for=bundle,
        reason=kwargs.pop("reason", "test"),
        **kwargs,
    )


def test_set_desired_writes_increasing_revisions_and_supersedes_pending_pushes(users, register):
    gateway = register("edge-1", push_url="http://127.0.0.1:9/config").gateway
    first = _desired(users, gateway, good_bundle(0))[0]
    second = _desired(users, gateway, good_bundle(0))[0]
    assert (first.revision, second.revision) == (1, 2)
    assert second.bundle["revision"] == 2 and second.bundle["service"] == "shelf-vision"
    states = dict(Delivery.objects.values_list("revision__revision", "state"))
    assert states == {1: "superseded", 2: "pending"}
    gateway.refresh_from_db()
    assert gateway.desired_revision == 2
    assert AuditEvent.objects.filter(action="set_desired", object_id=str(gateway.pk)).count() == 2


def test_set_desired_validates_all_or_nothing(users, register):
    one, two = register("edge-1").gateway, register("edge-2").gateway
    bundles = {one.pk: good_bundle(0), two.pk: invalid_bundle(0)}
    with pytest.raises(ValidationFailed) as caught:
        gateway_set_desired(
            actor=users["operator"], gateway_ids=[one.pk, two.pk], bundle_for=bundles, reason="x"
        )
    assert any("repeated hop" in p["message"] for p in caught.value.problems)
    assert not GatewayRevision.objects.exists() and not Delivery.objects.exists()


def test_a_push_is_acknowledged_and_the_gateway_runs_the_revision(users, register, gateway_factory):
    process = gateway_factory("edge-1", start=False)
    credentials = register("edge-1", push_url=f"http://127.0.0.1:{process.port}/config")
    process.secret = credentials.signing_secret
    process.start()
    _desired(users, credentials.gateway, good_bundle(0, description="from the control plane"), validate=True)

    report = delivery_dispatch_due()

    assert report.outcomes == {"ack": 1}
    delivery = Delivery.objects.get()
    assert delivery.state == "acked" and delivery.attempts == 1
    gateway = Gateway.objects.get(pk=credentials.gateway.pk)
    assert gateway.applied_revision == 1 and gateway.applied_etag == '"rev-1"'
    status = process.status()
    assert (
        status["applied_revision"] == 1 and status["routing_policy_description"] == "from the control plane"
    )


def test_a_nacked_revision_is_surfaced_and_never_sent_again(users, register, gateway_factory):
    process = gateway_factory("edge-1", start=False)
    credentials = register("edge-1", push_url=f"http://127.0.0.1:{process.port}/config")
    process.secret = credentials.signing_secret
    process.start()
    _desired(users, credentials.gateway, good_bundle(0, description="good"))
    delivery_dispatch_due()
    _desired(users, credentials.gateway, invalid_bundle(0))

    assert delivery_dispatch_due().outcomes == {"nack": 1}

    gateway = Gateway.objects.get(pk=credentials.gateway.pk)
    assert gateway.last_nack_revision == 2 and "repeated hop" in gateway.last_nack_error
    assert gateway.applied_revision == 1
    heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": 1})
    assert gateway_health_of(Gateway.objects.get(pk=gateway.pk), now=timezone.now()) == "nacked"
    # neither the dispatcher nor reconcile, however late, pushes revision 2 again
    later = timezone.now() + timedelta(hours=2)
    assert fleet_reconcile(now=later) == []
    assert delivery_dispatch_due(now=later).claimed == 0
    assert Delivery.objects.filter(revision__revision=2).count() == 1
    assert process.status()["routing_policy_description"] == "good"
    assert AuditEvent.objects.filter(action="nack", object_id=str(gateway.pk)).count() == 1


def test_a_gateway_down_during_a_push_shows_drifted_and_converges_after_restart(
    users, register, gateway_factory
):
    process = gateway_factory("edge-1", start=False)
    credentials = register("edge-1", push_url=f"http://127.0.0.1:{process.port}/config")
    process.secret = credentials.signing_secret
    process.start()
    gateway = credentials.gateway
    _desired(users, gateway, good_bundle(0))
    delivery_dispatch_due()
    process.stop()

    _desired(users, gateway, good_bundle(0, description="while down"))
    now = timezone.now()
    heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": 1}, now=now)  # its last word
    for _ in range(delivery_module.MAX_ATTEMPTS):
        delivery_dispatch_due(now=now + timedelta(hours=1))
        Delivery.objects.filter(state="pending").update(next_attempt_at=now)
    failed = Delivery.objects.get(revision__revision=2)
    assert failed.state == "failed" and failed.attempts == delivery_module.MAX_ATTEMPTS
    assert "ConnectionError" in failed.last_error
    assert gateway_health_of(Gateway.objects.get(pk=gateway.pk), now=now) == "drifted"

    process.start()  # back, still on revision 1 (its last-known-good)
    assert process.status()["applied_revision"] == 1
    later = timezone.now() + timedelta(hours=2)
    created = fleet_reconcile(now=later)
    assert len(created) == 1
    assert delivery_dispatch_due(now=later).outcomes == {"ack": 1}
    assert process.status()["applied_revision"] == 2
    assert Gateway.objects.get(pk=gateway.pk).applied_revision == 2
    assert fleet_reconcile(now=later + timedelta(hours=1)) == []  # converged: nothing more to send


def test_reconcile_waits_for_the_cooldown_unless_the_gateway_is_back(users, register):
    gateway = register("edge-1", push_url="http://127.0.0.1:9/config").gateway
    _desired(users, gateway, good_bundle(0))
    now = timezone.now()
    Delivery.objects.update(state="failed", finished_at=now)
    assert fleet_reconcile(now=now + timedelta(seconds=10)) == []
    heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": None}, now=now + timedelta(seconds=5))
    assert len(fleet_reconcile(now=now + timedelta(seconds=10))) == 1
    assert fleet_reconcile(now=now + timedelta(seconds=11)) == []  # one active push is enough


def test_rollbacks_are_claimed_first(users, register):
    normal = register("edge-1", push_url="http://127.0.0.1:9/config").gateway
    rollback = register("edge-2", push_url="http://127.0.0.1:9/config").gateway
    _desired(users, normal, good_bundle(0))
    _desired(users, rollback, good_bundle(0), priority="rollback")
    claimed = delivery_module.delivery_claim_due(now=timezone.now() + timedelta(seconds=1), limit=1)
    assert Delivery.objects.get(pk=claimed[0]).gateway_id == rollback.pk
    # a second worker cannot claim the same row
    again = delivery_module.delivery_claim_due(now=timezone.now() + timedelta(seconds=1), limit=5)
    assert claimed[0] not in again


def test_a_heartbeat_confirms_pushes_of_a_poll_only_gateway(users, register):
    gateway = register("edge-1", push_url="").gateway
    _desired(users, gateway, good_bundle(0))
    assert delivery_dispatch_due().claimed == 0  # nothing to push to: it polls
    heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": 1, "health": {"temperature_c": 50}})
    assert Delivery.objects.get().state == "acked"


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    import random

    rng = random.Random(1)
    for attempts in range(1, 12):
        ceiling = min(delivery_module.BACKOFF_CAP_S, delivery_module.BACKOFF_BASE_S * 2 ** (attempts - 1))
        value = backoff_s(attempts, rng=rng)
        assert ceiling / 2 <= value <= ceiling
