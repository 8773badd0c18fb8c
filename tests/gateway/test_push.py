"""Signed config pushes against a real gateway process."""

from __future__ import annotations

import time

import requests

from tests.gateway.support import good_bundle, invalid_bundle


def test_a_signed_valid_push_is_applied_and_acknowledged(gateway_factory):
    gateway = gateway_factory()
    response = gateway.push(good_bundle(1, description="first"))
    assert response.status_code == 200
    assert response.json() == {"status": "ack", "applied_revision": 1}
    status = gateway.status()
    assert status["applied_revision"] == 1 and status["source"] == "push"
    # the same revision again, freshly signed (a lost ACK, re-sent), is acknowledged without change
    again = gateway.push(good_bundle(1, description="first"), timestamp=time.time() - 1)
    assert again.json() == {"status": "ack", "applied_revision": 1}


def test_an_invalid_bundle_is_nacked_and_the_previous_config_keeps_serving(gateway_factory):
    gateway = gateway_factory()
    assert gateway.push(good_bundle(1, description="good one")).status_code == 200
    response = gateway.push(invalid_bundle(2))
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "nack" and body["revision"] == 2
    assert "repeated hop" in body["error"]
    status = gateway.wait_for(lambda s: s["traffic"]["requests"] > 0)
    assert status["applied_revision"] == 1
    assert status["routing_policy_description"] == "good one"
    assert status["rejected"]["revision"] == 2
    assert status["traffic"]["outcomes"].get("ok", 0) > 0


def test_a_tampered_body_or_wrong_secret_is_refused(gateway_factory):
    gateway = gateway_factory()
    good = good_bundle(1)
    from controlplane.lib.signing import sign
    from routing.fleet.bundle import bundle_bytes

    body = bundle_bytes(good)
    header = sign(gateway.secret, body, timestamp=int(time.time()))
    tampered = body.replace(b'"model_version":"v1"', b'"model_version":"v9"')
    assert gateway.push(good, body=tampered, header=header).status_code == 401
    assert gateway.push(good, secret="whsec_someone-else").status_code == 401
    assert gateway.push(good, header="").status_code == 401
    assert gateway.status()["applied_revision"] is None


def test_a_push_signed_under_two_secrets_is_accepted_by_a_gateway_holding_either(gateway_factory):
    """A secret rotation's grace window: the control plane signs under the new and the old secret."""
    from controlplane.lib.signing import sign
    from routing.fleet.bundle import bundle_bytes

    on_old = gateway_factory("gw-old", secret="whsec_old-secret")
    on_new = gateway_factory("gw-new", secret="whsec_new-secret")
    body = bundle_bytes(good_bundle(1, description="rotating"))
    header = sign("whsec_new-secret", body, timestamp=int(time.time()), previous_secret="whsec_old-secret")
    for gateway in (on_old, on_new):
        response = gateway.push({}, body=body, header=header)
        assert response.status_code == 200 and response.json() == {"status": "ack", "applied_revision": 1}
    # still a replay when sent again verbatim
    assert on_old.push({}, body=body, header=header).json()["status"] == "replay"


def test_a_tampered_or_foreign_dual_signature_is_refused(gateway_factory):
    from controlplane.lib.signing import sign
    from routing.fleet.bundle import bundle_bytes

    gateway = gateway_factory(secret="whsec_old-secret")
    body = bundle_bytes(good_bundle(1))
    now = int(time.time())
    dual = sign("whsec_new-secret", body, timestamp=now, previous_secret="whsec_old-secret")
    tampered_body = body.replace(b'"model_version":"v1"', b'"model_version":"v9"')
    assert gateway.push({}, body=tampered_body, header=dual).status_code == 401
    flipped = dual[:-1] + ("0" if dual[-1] != "0" else "1")  # one hex digit of the old signature changed
    assert gateway.push({}, body=body, header=flipped).status_code == 401
    foreign = sign("whsec_new-secret", body, timestamp=now, previous_secret="whsec_someone-else")
    assert gateway.push({}, body=body, header=foreign).status_code == 401
    stale = sign("whsec_new-secret", body, timestamp=now - 301, previous_secret="whsec_old-secret")
    assert "tolerance" in gateway.push({}, body=body, header=stale).json()["error"]
    assert gateway.status()["applied_revision"] is None


def test_an_old_timestamp_and_a_replayed_push_are_refused(gateway_factory):
    gateway = gateway_factory()
    old = gateway.push(good_bundle(1), timestamp=time.time() - 301)
    assert old.status_code == 401 and "tolerance" in old.json()["error"]

    from controlplane.lib.signing import sign
    from routing.fleet.bundle import bundle_bytes

    body = bundle_bytes(good_bundle(1))
    header = sign(gateway.secret, body, timestamp=int(time.time()))
    assert gateway.push({}, body=body, header=header).status_code == 200
    replay = gateway.push({}, body=body, header=header)
    assert replay.status_code == 409 and replay.json()["status"] == "replay"


def test_an_older_revision_is_refused_as_stale(gateway_factory):
    gateway = gateway_factory()
    assert gateway.push(good_bundle(5)).status_code == 200
    response = gateway.push(good_bundle(4))
    assert response.status_code == 409
    assert response.json() == {"status": "stale", "applied_revision": 5}
    assert gateway.status()["applied_revision"] == 5


def test_it_restarts_from_last_known_good_when_the_control_plane_is_unreachable(gateway_factory):
    from tests.gateway.support import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    gateway = gateway_factory(
        id=1, token="gw_test", control_plane_url=dead, poll_interval_s=0.2, heartbeat_interval_s=0.2
    )
    assert gateway.push(good_bundle(3, description="known good")).status_code == 200
    gateway.stop()
    gateway.start()
    status = gateway.wait_for(lambda s: s["traffic"]["requests"] > 0)
    assert status["applied_revision"] == 3
    assert status["source"] == "last_known_good"
    assert status["routing_policy_description"] == "known good"


def test_it_exposes_the_telemetry_contract_at_metrics(gateway_factory):
    gateway = gateway_factory()
    assert gateway.push(good_bundle(2)).status_code == 200
    gateway.wait_for(lambda s: s["traffic"]["requests"] > 0)
    text = requests.get(gateway.url + "/metrics", timeout=5).text
    for name in (
        "inference_requests_total",
        "inference_request_duration_seconds_bucket",
        "inference_cache_lookups_total",
        "inference_compute_seconds_total",
        "inference_device_temperature_celsius",
    ):
        assert name in text
    assert 'inference_config_revision{document_kind="routing_policy",gateway="gw-test"} 2.0' in text
    assert 'le="0.15"' in text


def test_a_body_over_one_mebibyte_is_refused(gateway_factory):
    gateway = gateway_factory()
    response = requests.post(gateway.url + "/config", data=b"x" * (1024 * 1024 + 1), timeout=10)
    assert response.status_code == 413
