"""Credential rotation with a grace window: the old token keeps authenticating and pushes are signed
under both secrets until the window ends; real reference gateways verify the pushes. Time is
controlled through gateway_rotate's `now`, never waited for."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.crypto import decrypt_secret
from controlplane.models import AuditEvent
from routing.fleet.credentials import DEFAULT_ROTATION_GRACE_S, MAX_ROTATION_GRACE_S, hash_gateway_token
from routing.fleet.delivery import delivery_dispatch_due
from routing.fleet.services import gateway_rotate, gateway_set_desired
from routing.models.fleet import Delivery, Gateway
from tests.gateway.support import good_bundle

pytestmark = pytest.mark.django_db


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _desired(users, *gateways, description: str = "") -> None:
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[g.pk for g in gateways],
        bundle_for=good_bundle(0, description=description),
        reason="test",
    )


def _rotate(users, gateway, **kwargs):
    return gateway_rotate(actor=users["operator"], gateway_id=gateway.pk, **kwargs)


def _works(token: str, gateway: Gateway) -> dict[str, int]:
    """Status codes of the gateway-facing calls made with `token`: config poll (DRF path and 304 fast
    path), heartbeat, telemetry (an empty batch: 400 once authenticated)."""
    client = _client(token)
    return {
        "config": client.get(f"/api/v1/gateways/{gateway.pk}/config").status_code,
        "config_304": client.get(
            f"/api/v1/gateways/{gateway.pk}/config", HTTP_IF_NONE_MATCH='"rev-1"'
        ).status_code,
        "heartbeat": client.post(
            f"/api/v1/gateways/{gateway.pk}/heartbeat/", {"applied_revision": None}, format="json"
        ).status_code,
        "telemetry": client.post(f"/api/v1/gateways/{gateway.pk}/telemetry/", {}, format="json").status_code,
    }


OK = {"config": 200, "config_304": 304, "heartbeat": 200, "telemetry": 400}
REFUSED = {"config": 401, "config_304": 401, "heartbeat": 401, "telemetry": 401}


# -- tokens --------------------------------------------------------------------------------------


def test_during_the_grace_window_the_old_and_the_new_token_both_work(
    users, register, django_assert_num_queries
):
    old = register("edge-1")
    _desired(users, old.gateway)
    new = _rotate(users, old.gateway, signing_secret=False, grace_seconds=600)

    assert _works(old.token, old.gateway) == OK
    assert _works(new.token, old.gateway) == OK
    with django_assert_num_queries(0):  # the 304 fast path: the current token's answer is in Redis
        cached = _client(new.token).get(
            f"/api/v1/gateways/{old.gateway.pk}/config", HTTP_IF_NONE_MATCH='"rev-1"'
        )
    assert cached.status_code == 304
    with django_assert_num_queries(2):  # a previous token (never cached): two reads in the database
        cached = _client(old.token).get(
            f"/api/v1/gateways/{old.gateway.pk}/config", HTTP_IF_NONE_MATCH='"rev-1"'
        )
    assert cached.status_code == 304


def test_the_fleet_view_tells_whether_a_gateway_still_uses_its_previous_token(users, register, api_for):
    old = register("edge-1")
    _desired(users, old.gateway)
    new = _rotate(users, old.gateway, signing_secret=False, grace_seconds=600)

    def view():
        return next(
            g for g in api_for("viewer").get("/api/v1/fleet/").json()["results"] if g["id"] == old.gateway.pk
        )

    assert view()["previous_token_expires_at"] is not None and view()["previous_token_last_used_at"] is None
    assert _works(new.token, old.gateway) == OK
    assert view()["previous_token_last_used_at"] is None  # the new token leaves no trace there

    before = timezone.now()
    # the 304 fast path alone records it too (the poll a gateway sends most)
    assert (
        _client(old.token)
        .get(f"/api/v1/gateways/{old.gateway.pk}/config", HTTP_IF_NONE_MATCH='"rev-1"')
        .status_code
        == 304
    )
    used = Gateway.objects.get(pk=old.gateway.pk).previous_token_last_used_at
    assert used is not None and used >= before
    assert view()["previous_token_last_used_at"] is not None
    assert _works(old.token, old.gateway) == OK  # within the minute: no new write
    assert Gateway.objects.get(pk=old.gateway.pk).previous_token_last_used_at == used

    # a minute later the heartbeat (DRF path) moves it on; a new rotation starts from nothing
    Gateway.objects.filter(pk=old.gateway.pk).update(previous_token_last_used_at=used - timedelta(minutes=2))
    assert _works(old.token, old.gateway) == OK
    assert Gateway.objects.get(pk=old.gateway.pk).previous_token_last_used_at > used - timedelta(minutes=2)
    _rotate(users, old.gateway, signing_secret=False, grace_seconds=600)
    assert Gateway.objects.get(pk=old.gateway.pk).previous_token_last_used_at is None


def test_after_the_grace_window_the_old_token_gets_401_like_any_unknown_token(users, register):
    old = register("edge-1")
    _desired(users, old.gateway)
    # rotated 61 s ago with a 60 s window: it ended a second ago
    new = _rotate(
        users, old.gateway, signing_secret=False, grace_seconds=60, now=timezone.now() - timedelta(seconds=61)
    )

    assert _works(old.token, old.gateway) == REFUSED
    assert (
        _client(old.token).get(f"/api/v1/gateways/{old.gateway.pk}/config").json()["detail"]
        == "invalid gateway token"
    )
    assert _works(new.token, old.gateway) == OK


def test_the_grace_window_is_checked_when_the_token_is_used(users, register):
    old = register("edge-1")
    _desired(users, old.gateway)
    _rotate(users, old.gateway, signing_secret=False, grace_seconds=600)
    assert _works(old.token, old.gateway) == OK
    # the same stored row, with its window moved into the past (time passing, without waiting)
    Gateway.objects.filter(pk=old.gateway.pk).update(
        previous_token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert _works(old.token, old.gateway) == REFUSED


def test_grace_zero_retires_the_old_credentials_at_once(users, register):
    old = register("edge-1")
    _desired(users, old.gateway)
    new = _rotate(users, old.gateway, grace_seconds=0)
    assert new.grace_expires_at is None
    assert _works(old.token, old.gateway) == REFUSED
    gateway = Gateway.objects.get(pk=old.gateway.pk)
    assert gateway.previous_token_hash == "" and gateway.previous_token_expires_at is None
    assert (
        gateway.previous_signing_secret_encrypted == "" and gateway.previous_signing_secret_expires_at is None
    )


def test_a_second_rotation_within_the_window_keeps_only_the_credential_it_rotates_out(users, register):
    first = register("edge-1")
    _desired(users, first.gateway)
    second = _rotate(users, first.gateway, grace_seconds=600)
    third = _rotate(users, first.gateway, grace_seconds=600)

    # one previous credential at a time: the second one (just rotated out), not the first
    assert _works(first.token, first.gateway) == REFUSED
    assert _works(second.token, first.gateway) == OK
    assert _works(third.token, first.gateway) == OK
    gateway = Gateway.objects.get(pk=first.gateway.pk)
    assert gateway.previous_token_hash == hash_gateway_token(second.token)
    assert decrypt_secret(gateway.previous_signing_secret_encrypted) == second.signing_secret
    assert decrypt_secret(gateway.signing_secret_encrypted) == third.signing_secret
    # the window restarts with the second rotation
    assert gateway.previous_token_expires_at == third.grace_expires_at


def test_a_second_rotation_without_grace_retires_both_older_credentials(users, register):
    first = register("edge-1")
    _desired(users, first.gateway)
    second = _rotate(users, first.gateway, grace_seconds=600)
    third = _rotate(users, first.gateway, grace_seconds=0)
    assert _works(first.token, first.gateway) == REFUSED
    assert _works(second.token, first.gateway) == REFUSED
    assert _works(third.token, first.gateway) == OK


def test_rotating_one_credential_leaves_the_other_ones_window_alone(users, register):
    old = register("edge-1")
    _rotate(users, old.gateway, token=False, grace_seconds=600)  # the secret only
    _rotate(users, old.gateway, signing_secret=False, grace_seconds=0)  # then the token, no grace
    gateway = Gateway.objects.get(pk=old.gateway.pk)
    assert decrypt_secret(gateway.previous_signing_secret_encrypted) == old.signing_secret
    assert gateway.previous_signing_secret_expires_at is not None
    assert gateway.previous_token_hash == ""


def test_previous_credentials_are_kept_hashed_and_encrypted_and_the_audit_names_the_expiry(
    users, register, caplog
):
    caplog.set_level(logging.DEBUG)
    old = register("edge-1")
    now = timezone.now()
    new = _rotate(users, old.gateway, grace_seconds=900, now=now)
    gateway = Gateway.objects.get(pk=old.gateway.pk)
    assert gateway.previous_token_hash == hash_gateway_token(old.token)
    assert old.signing_secret not in gateway.previous_signing_secret_encrypted
    assert decrypt_secret(gateway.previous_signing_secret_encrypted) == old.signing_secret
    assert (
        gateway.previous_token_expires_at
        == gateway.previous_signing_secret_expires_at
        == now + timedelta(seconds=900)
    )

    event = AuditEvent.objects.get(action="rotate_credentials", object_id=str(gateway.pk))
    assert event.after["grace_seconds"] == 900
    assert event.after["grace_expires_at"].startswith(
        (now + timedelta(seconds=900)).strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert event.after["rotated"] == ["token", "signing_secret"]
    assert "previous valid until" in event.note
    text = f"{event.before} {event.after} {event.note}"
    for value in (
        old.token,
        old.signing_secret,
        new.token,
        new.signing_secret,
        gateway.previous_token_hash,
        gateway.token_hash,
    ):
        assert value not in text
    for record in caplog.records:
        message = record.getMessage()
        assert all(v not in message for v in (old.token, old.signing_secret, new.token, new.signing_secret))


def test_the_service_refuses_a_bad_grace_window_and_changes_nothing(users, register):
    from controlplane.errors import ValidationFailed

    old = register("edge-1")
    for bad in (-1, MAX_ROTATION_GRACE_S + 1, "60", 1.5, True, None):
        with pytest.raises(ValidationFailed) as caught:
            _rotate(users, old.gateway, grace_seconds=bad)
        assert caught.value.problems[0]["path"] == "grace_seconds"
    assert Gateway.objects.get(pk=old.gateway.pk).token_hash == hash_gateway_token(old.token)
    assert not AuditEvent.objects.filter(action="rotate_credentials").exists()


# -- API -----------------------------------------------------------------------------------------


def test_the_api_defaults_to_an_hour_of_grace_and_returns_the_new_values_once(api_for, register):
    old = register("edge-1")
    before = timezone.now()
    response = api_for("operator").post(f"/api/v1/gateways/{old.gateway.pk}/rotate/", {}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"id", "token", "signing_secret", "grace_seconds", "grace_expires_at"}
    assert body["grace_seconds"] == DEFAULT_ROTATION_GRACE_S == 3600
    expires = Gateway.objects.get(pk=old.gateway.pk).previous_token_expires_at
    assert timedelta(seconds=3600) <= expires - before <= timedelta(seconds=3660)
    assert body["grace_expires_at"] is not None
    text = response.content.decode()
    assert old.token not in text and old.signing_secret not in text
    assert (
        _client(old.token).get(f"/api/v1/gateways/{old.gateway.pk}/config").status_code == 404
    )  # authenticated
    assert _client(body["token"]).get(f"/api/v1/gateways/{old.gateway.pk}/config").status_code == 404


@pytest.mark.parametrize("value", [0, MAX_ROTATION_GRACE_S])
def test_the_api_accepts_the_bounds(api_for, register, value):
    old = register("edge-1")
    response = api_for("operator").post(
        f"/api/v1/gateways/{old.gateway.pk}/rotate/", {"grace_seconds": value}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["grace_seconds"] == value
    assert (response.json()["grace_expires_at"] is None) == (value == 0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "greater than or equal to 0"),
        (MAX_ROTATION_GRACE_S + 1, f"less than or equal to {MAX_ROTATION_GRACE_S}"),
        ("3600", "valid integer"),
        (60.5, "valid integer"),
        (60.0, "valid integer"),
        (True, "valid integer"),
        (None, "null"),
        ([60], "valid integer"),
    ],
)
def test_the_api_refuses_a_bad_grace_window_with_the_field_path_and_changes_nothing(
    api_for, register, value, reason
):
    old = register("edge-1")
    stored = Gateway.objects.get(pk=old.gateway.pk)
    response = api_for("operator").post(
        f"/api/v1/gateways/{old.gateway.pk}/rotate/", {"grace_seconds": value}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["path"] for e in errors] == ["grace_seconds"]
    assert reason in errors[0]["message"]
    after = Gateway.objects.get(pk=old.gateway.pk)
    assert (after.token_hash, after.signing_secret_encrypted, after.previous_token_hash) == (
        stored.token_hash,
        stored.signing_secret_encrypted,
        "",
    )
    assert not AuditEvent.objects.filter(action="rotate_credentials").exists()


def test_viewers_still_cannot_rotate(api_for, register):
    old = register("edge-1")
    response = api_for("viewer").post(
        f"/api/v1/gateways/{old.gateway.pk}/rotate/", {"grace_seconds": 60}, format="json"
    )
    assert response.status_code == 403
    assert Gateway.objects.get(pk=old.gateway.pk).previous_token_hash == ""


# -- signed pushes to real gateways --------------------------------------------------------------


def _pushed_gateway(register, gateway_factory, name: str):
    """A registered gateway whose push URL is a (not yet started) reference gateway process."""
    process = gateway_factory(name, start=False)
    credentials = register(name, push_url=f"{process.url}/config")
    return credentials, process


def test_a_push_during_the_grace_window_is_accepted_with_the_old_and_with_the_new_secret(
    users, register, gateway_factory
):
    old_side, old_process = _pushed_gateway(register, gateway_factory, "edge-old")
    new_side, new_process = _pushed_gateway(register, gateway_factory, "edge-new")
    rotated_old = _rotate(users, old_side.gateway, grace_seconds=600)
    rotated_new = _rotate(users, new_side.gateway, grace_seconds=600)
    old_process.secret = old_side.signing_secret  # not reconfigured yet
    new_process.secret = rotated_new.signing_secret  # already moved to the new secret
    old_process.start()
    new_process.start()
    assert rotated_old.signing_secret != old_side.signing_secret
    _desired(users, old_side.gateway, new_side.gateway, description="during grace")

    report = delivery_dispatch_due()

    assert report.outcomes == {"ack": 2}
    for process in (old_process, new_process):
        status = process.status()
        assert status["applied_revision"] == 1 and status["routing_policy_description"] == "during grace"


def test_after_the_grace_window_a_gateway_with_the_old_secret_rejects_the_push(
    users, register, gateway_factory
):
    stale_side, stale_process = _pushed_gateway(register, gateway_factory, "edge-stale")
    moved_side, moved_process = _pushed_gateway(register, gateway_factory, "edge-moved")
    expired = timezone.now() - timedelta(seconds=61)
    _rotate(users, stale_side.gateway, grace_seconds=60, now=expired)
    rotated_moved = _rotate(users, moved_side.gateway, grace_seconds=60, now=expired)
    stale_process.secret = stale_side.signing_secret  # still the old secret after the window
    moved_process.secret = rotated_moved.signing_secret
    stale_process.start()
    moved_process.start()
    _desired(users, stale_side.gateway, moved_side.gateway)

    report = delivery_dispatch_due()

    assert report.outcomes == {"ack": 1, "retry": 1}
    refused = Delivery.objects.get(gateway_id=stale_side.gateway.pk)
    assert refused.state == "pending" and refused.last_error.startswith("HTTP 401")
    assert "bad signature" in refused.last_error
    assert stale_process.status()["applied_revision"] is None
    assert moved_process.status()["applied_revision"] == 1
