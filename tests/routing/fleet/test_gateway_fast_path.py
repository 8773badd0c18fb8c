"""The WSGI fast path of a gateway's telemetry push and heartbeat (routing.api.gateway_fastpath) in the
app the web server serves, against real PostgreSQL: it answers them without Django's handler, with the
status, body and headers the stack answers the same request with, and hands Django everything it
cannot answer exactly alike (refused and previous tokens, another gateway's token, throttled
requests, other body types, other databases), with one throttle count per request whichever
answers."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from controlplane.throttling import TokenRateThrottle
from routing.fleet.services import gateway_register, gateway_rotate, gateway_set_desired
from routing.models.fleet import Gateway
from slo import contract as c
from slo.models.telemetry import SliMinute
from slo.telemetry.batch_format import MAX_BATCH_MINUTES
from tests.support.wsgi import WsgiClient, WsgiResponse

pytestmark = pytest.mark.django_db

# differ by request: the id (made per request unless sent) and the length of the body
_PER_REQUEST = ("x-request-id", "content-length")


def _minute(ago: int) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=ago)).replace(second=0, microsecond=0)


def _body(minute: datetime, ok: int = 10, service: str = "shelf-vision", **extra: Any) -> dict[str, Any]:
    labels = {"service": service, "tier": "edge", "route": "local", "outcome": "ok"}
    return {
        "contract_version": 1,
        "gateway": "edge-1",
        "minutes": [
            {
                "minute": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "counters": [{"name": c.REQUESTS_TOTAL, "labels": labels, "increase": ok}],
            }
        ],
        **extra,
    }


def _path(gateway: Gateway) -> str:
    return f"/api/v1/gateways/{gateway.pk}/telemetry/"


def _stack(token: str, path: str, body: Any, **extra: Any) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    text = body if isinstance(body, str) else json.dumps(body)
    return client.generic("POST", path, data=text, content_type="application/json", **extra)


def _fast(token: str, path: str, body: Any, **environ: Any) -> WsgiResponse:
    return WsgiClient({"HTTP_AUTHORIZATION": f"Bearer {token}"}).post(path, body, **environ)


def _headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _PER_REQUEST}


@pytest.fixture
def slo(service: Any) -> Any:
    from slo.services import slo_create

    return slo_create(
        actor=None,
        data={
            "name": "edge-availability",
            "service": "shelf-vision",
            "tier": "edge",
            "sli": {"kind": "availability"},
            "objective": 99,
            "window": {"type": "rolling", "days": 28},
        },
    )


def test_both_fast_paths_are_wired_in_front_of_django() -> None:
    from controlplane import wsgi
    from routing.api.gateway_fastpath import GatewayWritesWSGI

    wrappers = []
    app = wsgi.application
    while hasattr(app, "app"):
        wrappers.append(type(app).__name__)
        app = app.app
    assert wrappers == ["ConfigPollWSGI", "GatewayWritesWSGI"]
    assert isinstance(wsgi.application.app, GatewayWritesWSGI)


def test_a_push_is_answered_before_django_in_two_round_trips(
    register: Any, slo: Any, django_assert_num_queries: Any
) -> None:
    one = register("edge-1")
    minute = _minute(3)
    assert _fast(one.token, _path(one.gateway), _body(_minute(4))).status_code == 202  # warms the process
    with django_assert_num_queries(2):  # the token with the SLOs it feeds, then every write
        answer = _fast(one.token, _path(one.gateway), _body(minute, ok=42), HTTP_X_REQUEST_ID="push-1")
    assert answer.status_code == 202 and not answer.handled_by_django
    assert answer.headers["X-Request-ID"] == "push-1"
    result = answer.json()["result"]
    assert (
        result["slo_ids"] == [slo.pk]
        and result["samples"] == 1
        and result["source"] == f"gateway:{one.gateway.pk}"
    )
    stored = SliMinute.objects.get(slo=slo, minute=int(minute.timestamp()) // 60)
    assert (stored.good, stored.valid, stored.source) == (42, 42, f"gateway:{one.gateway.pk}")


@pytest.mark.parametrize("https", [False, True])
def test_a_fast_202_is_the_stacks_202(register: Any, slo: Any, settings: Any, https: bool) -> None:
    settings.SECURE_SSL_REDIRECT = https
    settings.SECURE_HSTS_SECONDS = 3600 if https else 0
    one = register("edge-1")
    stack = _stack(one.token, _path(one.gateway), _body(_minute(4)), secure=https)
    fast = _fast(
        one.token, _path(one.gateway), _body(_minute(3)), **({"wsgi.url_scheme": "https"} if https else {})
    )
    assert (stack.status_code, fast.status_code, fast.handled_by_django) == (202, 202, False)
    assert _headers(fast.headers) == _headers(stack.headers)
    assert ("Strict-Transport-Security" in fast.headers) is https
    same = {"minutes", "samples", "slo_minutes", "slo_ids", "hours_pending", "stale_minutes_ignored"}
    assert {k: v for k, v in fast.json()["result"].items() if k in same} == {
        k: v for k, v in stack.json()["result"].items() if k in same
    }
    assert set(fast.json()) == set(stack.json()) == {"accepted", "result"}
    assert set(fast.json()["result"]) == set(stack.json()["result"])


def _bad_bodies() -> list[tuple[str, Any, int]]:
    minute = _minute(2)
    many = _body(minute)
    many["minutes"] = [dict(many["minutes"][0]) for _ in range(MAX_BATCH_MINUTES + 1)]
    return [
        ("not json", "{nope", 400),
        ("not an object", "[1, 2]", 400),
        ("a bad count", json.dumps(_body(minute, ok=-5)), 400),
        ("a stale field", json.dumps(_body(minute, extra=1)), 400),
        ("another service", json.dumps(_body(minute, service="fraud-score")), 403),
        ("too many minutes", json.dumps(many), 413),
    ]


@pytest.mark.parametrize(("case", "status"), [(case, status) for case, _, status in _bad_bodies()])
def test_a_refused_push_gets_the_stacks_answer_from_the_fast_path(
    register: Any, slo: Any, users: Any, case: str, status: int
) -> None:
    from slo.services import service_create

    service_create(
        actor=None, data={"name": "fraud-score", "service_class": "interactive", "tiers": ["edge"]}
    )
    body = next(b for name, b, _ in _bad_bodies() if name == case)
    one = register("edge-1")
    stack = _stack(one.token, _path(one.gateway), body)
    fast = _fast(one.token, _path(one.gateway), body)
    assert (stack.status_code, fast.status_code, fast.handled_by_django) == (status, status, False)
    assert fast.json() == stack.json()
    assert fast.headers["Content-Type"] == "application/problem+json"
    assert _headers(fast.headers) == _headers(stack.headers)
    assert not SliMinute.objects.exists()


def test_what_it_cannot_answer_alike_goes_to_django(
    register: Any, slo: Any, users: Any, monkeypatch: Any
) -> None:
    one, two = register("edge-1"), register("edge-2")
    path, body = _path(one.gateway), _body(_minute(3))

    refused = _fast("gw_not-a-real-token", path, body)
    assert (refused.status_code, refused.handled_by_django) == (401, True)
    person = _fast("slo_" + "x" * 43, path, body)  # a person's token is refused unread
    assert (person.status_code, person.handled_by_django) == (401, True)
    other = _fast(two.token, path, body)  # edge-2's token on edge-1's URL
    assert (other.status_code, other.handled_by_django) == (403, True)
    query = _fast(one.token, path + "?x=1", body)
    assert (query.status_code, query.handled_by_django) == (202, True)
    unknown_length = _fast(one.token, path, body, CONTENT_LENGTH="")
    assert (unknown_length.status_code, unknown_length.handled_by_django) == (400, True)

    from django.db import connection

    from routing.api.gateway_fastpath import GatewayWritesWSGI

    handed: list[bool] = []
    app = GatewayWritesWSGI(lambda environ, start_response: handed.append(True) or [])
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the embedded mode: the stack's ORM path
    raw = json.dumps(_body(_minute(2))).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_AUTHORIZATION": f"Bearer {one.token}",
    }
    assert app(environ, lambda status, headers: None) == [] and handed == [True]
    assert environ["wsgi.input"].read() == raw  # unread


def test_a_previous_token_in_its_grace_window_is_answered_and_recorded_by_django(
    register: Any, slo: Any, users: Any
) -> None:
    one = register("edge-1")
    gateway_rotate(
        actor=users["operator"], gateway_id=one.gateway.pk, signing_secret=False, grace_seconds=600
    )
    answer = _fast(one.token, _path(one.gateway), _body(_minute(3)))
    assert (answer.status_code, answer.handled_by_django) == (202, True)
    one.gateway.refresh_from_db()
    assert one.gateway.previous_token_last_used_at is not None


def test_one_throttle_count_per_push_whichever_answers(register: Any, slo: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "ingest": "3/min"}
    )
    one = register("edge-1")
    path = _path(one.gateway)
    first = _fast(one.token, path, _body(_minute(5)))
    bad = _fast(one.token, path, "{nope")  # counted, as the stack counts it: the throttle comes first
    second = _stack(one.token, path, json.dumps(_body(_minute(4))))
    assert [first.status_code, bad.status_code, second.status_code] == [202, 400, 202]
    assert not first.handled_by_django and not bad.handled_by_django
    third = _fast(one.token, path, _body(_minute(3)))
    assert (third.status_code, third.handled_by_django) == (429, True)
    assert int(third.headers["Retry-After"]) > 0
    assert _stack(one.token, path, json.dumps(_body(_minute(2)))).status_code == 429
    # another gateway has its own count
    two = gateway_register(actor=None, data={"name": "edge-2", "service": "shelf-vision", "tier": "edge"})
    assert _fast(two.token, _path(two.gateway), _body(_minute(3))).status_code == 202


# --- heartbeats


def _heartbeat_path(gateway: Gateway) -> str:
    return f"/api/v1/gateways/{gateway.pk}/heartbeat/"


@pytest.fixture
def desired(users: Any, register: Any) -> Any:
    """edge-1 with desired revision 2 and the push of revision 1 still open."""
    from routing.models.fleet import Delivery
    from tests.gateway.support import good_bundle

    one = register("edge-1", push_url="")
    for _ in range(2):
        gateway_set_desired(
            actor=users["operator"],
            gateway_ids=[one.gateway.pk],
            bundle_for=good_bundle(0),
            reason="t",
            validate=False,
        )
    Delivery.objects.filter(gateway=one.gateway).update(state=Delivery.PENDING, finished_at=None)
    return one


def test_a_heartbeat_is_answered_before_django_in_two_round_trips(
    desired: Any, django_assert_num_queries: Any
) -> None:
    from routing.models.capacity import GatewayHealthSample
    from routing.models.fleet import Delivery

    body = {
        "applied_revision": 1,
        "config_etag": '"rev-1"',
        "health": {"queue_depth": 3, "temperature_c": 58.5},
    }
    with django_assert_num_queries(2):  # the token, then every write in one statement
        answer = _fast(desired.token, _heartbeat_path(desired.gateway), body)
    assert (answer.status_code, answer.handled_by_django) == (200, False)
    assert answer.json() == {"desired_revision": 2, "desired_etag": '"rev-2"'}
    row = Gateway.objects.get(pk=desired.gateway.pk)
    assert (row.applied_revision, row.applied_etag, row.device_health) == (1, '"rev-1"', body["health"])
    assert GatewayHealthSample.objects.get(gateway_id=row.pk).queue_depth == 3
    states = dict(Delivery.objects.filter(gateway=row).values_list("revision__revision", "state"))
    assert states == {1: "acked", 2: "pending"}


@pytest.mark.parametrize(
    ("case", "body", "status"),
    [
        ("a fine one", {"applied_revision": 2, "health": {"queue_depth": 1}}, 200),
        ("an empty body", "", 200),
        ("not json", "{nope", 400),
        ("not an object", "[1]", 400),
        ("a bad revision", {"applied_revision": -1}, 400),
        ("a bad etag", {"config_etag": "x" * 41}, 400),
        ("a nack", {"applied_revision": 1, "nack": {"revision": 2, "error": "bad"}}, 200),
    ],
)
def test_a_fast_heartbeat_answer_is_the_stacks(desired: Any, case: str, body: Any, status: int) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    stack = _stack(desired.token, _heartbeat_path(desired.gateway), text)
    fast = WsgiClient({"HTTP_AUTHORIZATION": f"Bearer {desired.token}"}).generic(
        "POST", _heartbeat_path(desired.gateway), data=text, content_type="application/json"
    )
    assert (stack.status_code, fast.status_code, fast.handled_by_django) == (status, status, False)
    assert fast.json() == stack.json()
    assert _headers(fast.headers) == _headers(stack.headers)


def test_a_heartbeat_the_fast_path_cannot_answer_alike_goes_to_django(desired: Any, register: Any) -> None:
    other = register("edge-2")
    path, body = _heartbeat_path(desired.gateway), json.dumps({"applied_revision": 1})
    form = WsgiClient({"HTTP_AUTHORIZATION": f"Bearer {desired.token}"}).generic(
        "POST", path, data="applied_revision=1", content_type="application/x-www-form-urlencoded"
    )
    assert form.handled_by_django and form.status_code == 400  # DRF parses the form: "1" is a string
    wrong = _fast(other.token, path, body)
    assert (wrong.status_code, wrong.handled_by_django) == (403, True)
    big = _fast(desired.token, path, {"applied_revision": 1, "pad": "x" * 70_000})
    assert big.handled_by_django


def test_one_throttle_count_per_heartbeat_whichever_answers(desired: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(
        TokenRateThrottle, "THROTTLE_RATES", {**TokenRateThrottle.THROTTLE_RATES, "token": "2/min"}
    )
    path, body = _heartbeat_path(desired.gateway), {"applied_revision": 1}
    first = _fast(desired.token, path, body)
    second = _stack(desired.token, path, json.dumps(body))
    assert (first.status_code, first.handled_by_django, second.status_code) == (200, False, 200)
    third = _fast(desired.token, path, body)
    assert (third.status_code, third.handled_by_django) == (429, True)
