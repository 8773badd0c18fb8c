"""Gateway-facing endpoints: config poll (ETag/304), heartbeat, telemetry push; against a real
control plane HTTP server (live_server) and real gateway processes where it matters."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from gateway.app import Gateway as ReferenceGateway
from gateway.config import load_config
from routing.fleet.services import gateway_set_desired
from routing.models.fleet import Delivery, Gateway
from tests.gateway.support import good_bundle, invalid_bundle


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _desired(users, gateway, bundle, validate=False):
    return gateway_set_desired(
        actor=users["operator"], gateway_ids=[gateway.pk], bundle_for=bundle, reason="test", validate=validate
    )


@pytest.mark.django_db
def test_the_config_poll_serves_the_bundle_with_an_etag_and_304_in_one_query(
    users, register, django_assert_num_queries
):
    credentials = register("edge-1")
    client = _client(credentials.token)
    assert client.get(f"/api/v1/gateways/{credentials.gateway.pk}/config").status_code == 404  # nothing yet
    _desired(users, credentials.gateway, good_bundle(0))

    response = client.get(f"/api/v1/gateways/{credentials.gateway.pk}/config")
    assert response.status_code == 200
    assert response["ETag"] == '"rev-1"'
    assert response.json()["revision"] == 1 and response.json()["service"] == "shelf-vision"

    with django_assert_num_queries(1):  # the token lookup also yields the desired revision
        cached = client.get(f"/api/v1/gateways/{credentials.gateway.pk}/config", HTTP_IF_NONE_MATCH='"rev-1"')
    assert cached.status_code == 304 and cached["ETag"] == '"rev-1"'
    stale = client.get(f"/api/v1/gateways/{credentials.gateway.pk}/config", HTTP_IF_NONE_MATCH='"rev-0"')
    assert stale.status_code == 200


@pytest.mark.django_db
def test_the_304_answered_before_the_stack_carries_the_headers_the_stack_adds(users, register):
    from django.urls import resolve

    credentials = register("edge-1")
    _desired(users, credentials.gateway, good_bundle(0))
    path = f"/api/v1/gateways/{credentials.gateway.pk}/config"
    assert resolve(path).url_name == "gateway-config"  # the middleware's pattern is the route's
    client = _client(credentials.token)
    full = client.get(path, HTTP_X_REQUEST_ID="poll-200")  # no If-None-Match: through the whole stack
    fast = client.get(path, HTTP_IF_NONE_MATCH='"rev-1"', HTTP_X_REQUEST_ID="poll-304")

    assert (full.status_code, fast.status_code) == (200, 304)
    assert fast["X-Request-ID"] == "poll-304" and fast["ETag"] == '"rev-1"' and fast.content == b""
    content_headers = {"content-type", "content-length", "etag", "x-request-id", "vary", "allow"}
    stack_headers = {name.lower() for name in full.headers} - content_headers
    assert stack_headers <= {name.lower() for name in fast.headers}
    for name in stack_headers:
        assert fast[name] == full[name], name


@pytest.mark.django_db
def test_polls_the_fast_path_cannot_answer_go_through_the_stack(users, register):
    one, two = register("edge-1"), register("edge-2")
    _desired(users, one.gateway, good_bundle(0))
    path = f"/api/v1/gateways/{one.gateway.pk}/config"
    tag = {"HTTP_IF_NONE_MATCH": '"rev-1"'}
    assert _client(two.token).get(path, **tag).status_code == 403  # another gateway's token
    unknown = _client("gw_not-a-real-token").get(path, **tag)
    assert unknown.status_code == 401 and unknown.json()["detail"]
    assert _client(one.token).get(path, HTTP_IF_NONE_MATCH='"rev-9"').status_code == 200
    assert _client(one.token).get(path + "/", **tag).status_code == 304  # the route's optional slash
    assert _client(one.token).get(path + "x", **tag).status_code == 404  # not the config route


@pytest.mark.django_db
def test_gateway_endpoints_take_only_that_gateways_token(users, register, api_for):
    one, two = register("edge-1"), register("edge-2")
    path = f"/api/v1/gateways/{one.gateway.pk}/config"
    assert _client(two.token).get(path).status_code == 403  # another gateway's id
    assert api_for("admin").get(path).status_code == 401  # a person's token is not a gateway token
    assert APIClient().get(path).status_code == 401
    assert _client("gw_not-a-real-token").get(path).status_code == 401
    heartbeat = f"/api/v1/gateways/{one.gateway.pk}/heartbeat/"
    assert _client(two.token).post(heartbeat, {"applied_revision": 1}, format="json").status_code == 403
    assert api_for("operator").post(heartbeat, {"applied_revision": 1}, format="json").status_code == 401


@pytest.mark.django_db
def test_a_heartbeat_records_applied_revision_health_and_nack(users, register):
    credentials = register("edge-1")
    _desired(users, credentials.gateway, good_bundle(0))
    client = _client(credentials.token)
    path = f"/api/v1/gateways/{credentials.gateway.pk}/heartbeat/"
    answer = client.post(
        path,
        {
            "applied_revision": None,
            "health": {"temperature_c": 71},
            "nack": {"revision": 1, "error": "no backend for public_cloud"},
        },
        format="json",
    )
    assert answer.status_code == 200
    assert answer.json() == {"desired_revision": 1, "desired_etag": '"rev-1"'}
    gateway = Gateway.objects.get(pk=credentials.gateway.pk)
    assert gateway.device_health == {"temperature_c": 71}
    assert gateway.last_nack_revision == 1 and gateway.last_heartbeat_at is not None
    bad = client.post(path, {"applied_revision": "x", "health": []}, format="json")
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json()["errors"]} == {"applied_revision", "health"}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_polling_gateway_converges_then_gets_304s(live_server, users, register, gateway_factory):
    credentials = register("edge-1")  # no push_url: poll only
    _desired(users, credentials.gateway, good_bundle(0, description="polled"))
    process = gateway_factory(
        "edge-1",
        id=credentials.gateway.pk,
        token=credentials.token,
        control_plane_url=live_server.url,
        poll_interval_s=0.3,
        heartbeat_interval_s=0.3,
    )

    status = process.wait_for(lambda s: s["applied_revision"] == 1 and s["polls"].get("not_modified", 0) >= 2)
    assert status["routing_policy_description"] == "polled" and status["source"] == "poll"
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline and Gateway.objects.get(pk=credentials.gateway.pk).applied_revision != 1
    ):
        time.sleep(0.1)
    assert Gateway.objects.get(pk=credentials.gateway.pk).applied_revision == 1
    assert Delivery.objects.get().state == "acked"  # confirmed by the heartbeat

    # an invalid revision is rejected once, reported as a NACK, and not downloaded again
    _desired(users, credentials.gateway, invalid_bundle(0))
    status = process.wait_for(lambda s: (s["rejected"] or {}).get("revision") == 2)
    rejected_polls = status["polls"].get("rejected", 0)
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline and Gateway.objects.get(pk=credentials.gateway.pk).last_nack_revision != 2
    ):
        time.sleep(0.1)
    assert Gateway.objects.get(pk=credentials.gateway.pk).last_nack_revision == 2
    time.sleep(1.0)
    status = process.status()
    assert status["polls"].get("rejected", 0) == rejected_polls == 1
    assert status["applied_revision"] == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_telemetry_push_accepts_the_gateways_token_only(live_server, users, register, api_for, tmp_path):
    credentials = register("edge-1")
    config = load_config(
        None,
        {
            "name": "edge-1",
            "service": "shelf-vision",
            "state_dir": str(tmp_path),
            "gateway_id": credentials.gateway.pk,
            "token": credentials.token,
            "control_plane_url": live_server.url,
        },
    )
    reference = ReferenceGateway(config)
    start = (int(time.time()) // 60 - 3) * 60
    for second in range(0, 120, 15):
        reference.tick(now=start + second, requests_count=10)

    assert reference.push_telemetry_once() == "accepted"
    assert reference.telemetry_batch(now=time.time())[0] == []  # acknowledged minutes are dropped

    path = f"/api/v1/gateways/{credentials.gateway.pk}/telemetry/"
    body = {"contract_version": 1, "gateway": "edge-1", "minutes": []}
    assert api_for("admin").post(path, body, format="json").status_code == 401
    other = register("edge-2")
    assert _client(other.token).post(path, body, format="json").status_code == 403


@pytest.mark.django_db
def test_telemetry_push_over_the_size_limit_gets_413(register):
    from slo.telemetry.batch_format import MAX_BATCH_MINUTES

    credentials = register("edge-1")
    client = _client(credentials.token)
    path = f"/api/v1/gateways/{credentials.gateway.pk}/telemetry/"
    too_many = {
        "contract_version": 1,
        "gateway": "edge-1",
        "minutes": [{"minute": "2025-01-01T00:00:00Z", "counters": []}] * (MAX_BATCH_MINUTES + 1),
    }
    assert client.post(path, too_many, format="json").status_code == 413
    huge = client.generic(
        "POST", path, data="x", content_type="application/json", CONTENT_LENGTH=str(9 * 1024 * 1024)
    )
    assert huge.status_code == 413
    invalid = client.post(path, {"contract_version": 99, "minutes": []}, format="json")
    assert invalid.status_code == 400
    assert client.generic("POST", path, data="[1]", content_type="application/json").status_code == 400
    # a real 3 MB body (above Django's form limit, below the batch limit) is read, not refused as too big
    padded = '{"contract_version": 99, "minutes": [], "pad": "' + "x" * 3_000_000 + '"}'
    assert client.generic("POST", path, data=padded, content_type="application/json").status_code == 400


@pytest.mark.django_db
def test_telemetry_push_is_rate_limited_per_gateway(register, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"ingest": "2/min"})
    one, two = register("edge-1"), register("edge-2")
    body = {"contract_version": 1, "gateway": "edge-1", "minutes": []}
    codes = [
        _client(one.token)
        .post(f"/api/v1/gateways/{one.gateway.pk}/telemetry/", body, format="json")
        .status_code
        for _ in range(3)
    ]
    assert codes[2] == 429 and 429 not in codes[:2]
    # another gateway has its own budget
    other = _client(two.token).post(f"/api/v1/gateways/{two.gateway.pk}/telemetry/", body, format="json")
    assert other.status_code != 429
    cache.clear()
