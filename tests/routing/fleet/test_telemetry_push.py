"""The gateway telemetry endpoint over HTTP, on PostgreSQL: a gateway pushes only its own service
and tier (403 naming the label, nothing stored), a replayed older batch never undoes a later
correction, and no value a client can send gets anything but a 4xx with its path.

Every test runs twice: through Django's test client, and through the app the web server serves
(`controlplane.wsgi`), where the push's WSGI fast path answers it (routing.api.gateway_fastpath)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests as http
from rest_framework.test import APIClient

from gateway.app import Gateway as ReferenceGateway
from gateway.config import load_config
from slo import contract as c
from slo.models.telemetry import PushedMinute, SeriesMinute, SliFeed, SliHourPending, SliMinute, SliSpan

TABLES = (SeriesMinute, SliMinute, SliFeed, SliHourPending, PushedMinute)


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _wsgi_client(token: str) -> Any:
    from tests.support.wsgi import WsgiClient

    return WsgiClient({"HTTP_AUTHORIZATION": f"Bearer {token}"})


@pytest.fixture(autouse=True, params=["test client", "wsgi app"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "wsgi app":
        monkeypatch.setattr(sys.modules[__name__], "_client", _wsgi_client)
    return str(request.param)


def _minute(ago: int) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=ago)).replace(second=0, microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _requests(outcome: str, n: Any, service: str = "shelf-vision", tier: str = "edge") -> dict[str, Any]:
    return {
        "name": c.REQUESTS_TOTAL,
        "labels": {"service": service, "tier": tier, "route": "local", "outcome": outcome},
        "increase": n,
    }


def _batch(minutes: dict[datetime, list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    return {
        "contract_version": 1,
        "gateway": "edge-1",
        "minutes": [{"minute": _iso(m), "counters": counters} for m, counters in minutes.items()],
        **extra,
    }


def _counts() -> list[int]:
    return [table.objects.count() for table in TABLES]


@pytest.fixture
def services(service: Any) -> dict[str, Any]:
    """shelf-vision with an availability SLO on the edge, plus two other services gateways must not
    speak for."""
    from slo.services import service_create, slo_create

    slo = slo_create(
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
    for name in ("fraud-score", "doc-summarizer"):
        service_create(
            actor=None, data={"name": name, "service_class": "interactive", "tiers": ["edge", "public_cloud"]}
        )
    return {"availability": slo}


@pytest.fixture
def edge_1(register: Any, services: Any) -> Any:
    """Gateway edge-1 of shelf-vision on the edge tier (eu-west)."""
    return register("edge-1")


def _path(credentials: Any) -> str:
    return f"/api/v1/gateways/{credentials.gateway.pk}/telemetry/"


@pytest.mark.django_db
def test_a_push_for_other_services_gets_403_naming_the_label_and_stores_nothing(edge_1: Any) -> None:
    client = _client(edge_1.token)
    m1, m2 = _minute(3), _minute(2)
    assert client.post(_path(edge_1), _batch({m1: [_requests("ok", 10)]}), format="json").status_code == 202
    before = _counts()

    attack = _batch(
        {
            m2: [
                _requests("ok", 10),
                _requests("error", 5000, service="fraud-score"),
                _requests("error", 5000, service="doc-summarizer"),
            ],
            m1: [_requests("error", 5000, service="fraud-score")],
        }
    )
    response = client.post(_path(edge_1), attack, format="json")
    assert response.status_code == 403
    assert [(e["path"], e["message"]) for e in response.json()["errors"]] == [
        (f"minutes[{i}].counters[{j}].labels.service", "gateway edge-1 may push only service shelf-vision")
        for i, j in ((0, 1), (0, 2), (1, 0))
    ]
    assert _counts() == before
    assert not SeriesMinute.objects.exclude(service="shelf-vision").exists()

    other_tier = client.post(
        _path(edge_1), _batch({m2: [_requests("ok", 1, tier="public_cloud")]}), format="json"
    )
    assert other_tier.status_code == 403
    assert [e["path"] for e in other_tier.json()["errors"]] == ["minutes[0].counters[0].labels.tier"]
    assert _counts() == before

    # its own series on its own tier are still accepted
    allowed = client.post(_path(edge_1), _batch({m2: [_requests("ok", 7)]}), format="json")
    assert allowed.status_code == 202
    assert allowed.json()["result"]["stale_minutes_ignored"] == 0
    assert SliMinute.objects.get(minute=int(m2.timestamp()) // 60).valid == 7


@pytest.mark.django_db
def test_a_gateway_of_another_service_is_held_to_its_own(register: Any, services: Any, users: Any) -> None:
    from routing.fleet.services import gateway_register

    fraud = gateway_register(
        actor=users["operator"], data={"name": "fraud-1", "service": "fraud-score", "tier": "public_cloud"}
    )
    batch = _batch({_minute(2): [_requests("ok", 3)]})
    response = _client(fraud.token).post(_path(fraud), batch, format="json")
    assert response.status_code == 403
    assert [e["path"] for e in response.json()["errors"]] == [
        "minutes[0].counters[0].labels.service",
        "minutes[0].counters[0].labels.tier",
    ]
    own = _batch({_minute(2): [_requests("ok", 3, service="fraud-score", tier="public_cloud")]})
    assert _client(fraud.token).post(_path(fraud), own, format="json").status_code == 202


@pytest.mark.django_db
def test_replaying_an_older_batch_after_a_correction_leaves_the_correction(
    edge_1: Any, services: Any
) -> None:
    client = _client(edge_1.token)
    m1, m2 = _minute(4), _minute(3)
    now = datetime.now(UTC)
    captured = _batch(
        {m1: [_requests("ok", 90), _requests("error", 10)], m2: [_requests("ok", 50)]},
        sent_at=(now - timedelta(seconds=30)).isoformat(),
    )
    correction = _batch({m1: [_requests("ok", 100)]}, sent_at=(now - timedelta(seconds=10)).isoformat())
    assert client.post(_path(edge_1), captured, format="json").status_code == 202
    assert client.post(_path(edge_1), correction, format="json").status_code == 202

    replay = client.post(_path(edge_1), captured, format="json")
    assert replay.status_code == 202
    result = replay.json()["result"]
    assert result["stale_minutes_ignored"] == 1 and result["stale_minutes"] == [_iso(m1)]
    assert result["minutes"] == 1  # m2 was never corrected: re-stored as it was
    slo = services["availability"].pk
    stored = sorted(SliMinute.objects.filter(slo_id=slo).values_list("minute", "good", "valid"))
    e1, e2 = int(m1.timestamp()) // 60, int(m2.timestamp()) // 60
    assert stored == [(e1, 100, 100), (e2, 50, 50)]
    assert sorted(SeriesMinute.objects.values_list("minute", "labels", "value")) == [
        (e1, "outcome=ok,route=local", 100.0),
        (e2, "outcome=ok,route=local", 50.0),
    ]


def _all_rows() -> list[list[tuple[Any, ...]]]:
    """Every row a push writes, whole (stamps, marks and spans included)."""
    return [
        sorted(SeriesMinute.objects.values_list("minute", "source", "name", "labels", "value")),
        sorted(SliMinute.objects.values_list("slo_id", "minute", "source", "good", "valid", "present")),
        sorted(SliFeed.objects.values_list("slo_id", "source", "mode", "first_minute", "last_minute")),
        sorted(SliHourPending.objects.values_list("slo_id", "hour", "marked_at")),
        sorted(SliSpan.objects.values_list("slo_id", "first_minute", "last_minute", "marked_at")),
        sorted(PushedMinute.objects.values_list("source", "minute", "stamp")),
    ]


@pytest.mark.django_db
def test_a_replay_of_only_stale_minutes_writes_nothing_at_all(edge_1: Any, services: Any) -> None:
    client = _client(edge_1.token)
    m1 = _minute(4)
    now = datetime.now(UTC)
    older = _batch({m1: [_requests("ok", 90)]}, sent_at=(now - timedelta(seconds=30)).isoformat())
    newer = _batch({m1: [_requests("ok", 100)]}, sent_at=(now - timedelta(seconds=10)).isoformat())
    assert client.post(_path(edge_1), newer, format="json").status_code == 202
    before = _all_rows()

    replay = client.post(_path(edge_1), older, format="json")
    assert replay.status_code == 202
    result = replay.json()["result"]
    assert (result["minutes"], result["samples"], result["slo_minutes"], result["hours_pending"]) == (
        0,
        0,
        0,
        0,
    )
    assert result["stale_minutes"] == [_iso(m1)]
    # not even a feed extension, a pending mark or a sync span
    assert _all_rows() == before


@pytest.mark.django_db
def test_one_push_is_two_round_trips_and_an_slo_created_in_between_is_fed_at_once(
    edge_1: Any, services: Any, django_assert_num_queries: Any
) -> None:
    from slo.services import slo_create

    client = _client(edge_1.token)
    m1, m2 = _minute(4), _minute(3)
    assert client.post(_path(edge_1), _batch({m1: [_requests("ok", 10)]}), format="json").status_code == 202
    fresh = slo_create(
        actor=None,
        data={
            "name": "edge-availability-strict",
            "service": "shelf-vision",
            "tier": "edge",
            "sli": {"kind": "availability"},
            "objective": 99.9,
            "window": {"type": "rolling", "days": 7},
        },
    )
    # the token and the SLOs the push feeds in one round trip, every write in another
    with django_assert_num_queries(2):
        answer = client.post(_path(edge_1), _batch({m2: [_requests("ok", 20)]}), format="json")
    assert answer.status_code == 202
    assert sorted(answer.json()["result"]["slo_ids"]) == sorted([services["availability"].pk, fresh.pk])
    e1, e2 = int(m1.timestamp()) // 60, int(m2.timestamp()) // 60
    assert sorted(SliMinute.objects.values_list("slo_id", "minute", "good")) == sorted(
        [(services["availability"].pk, e1, 10), (services["availability"].pk, e2, 20), (fresh.pk, e2, 20)]
    )


BAD_VALUES = [
    ("1e308", "at most 1,000,000,000 events"),
    ("1" + "0" * 30, "at most 1,000,000,000 events"),
    ("-5", "must not be negative"),
    ("2.5", "whole number"),
    ("NaN", "finite number"),
    ("Infinity", "finite number"),
    ("-Infinity", "finite number"),
    ("1e999", "finite number"),
    ('"12"', "finite number"),
    ("true", "finite number"),
    ("null", "finite number"),
    ("[1]", "finite number"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("raw_value", "message"), BAD_VALUES)
def test_every_bad_count_gets_400_with_its_path_and_stores_nothing(
    edge_1: Any, raw_value: str, message: str
) -> None:
    # raw JSON text: NaN, Infinity and 1e999 are what a client can send, not what json.dumps writes
    batch = _batch({_minute(2): [_requests("error", 1), _requests("ok", "VALUE")]})
    body = json.dumps(batch).replace('"VALUE"', raw_value)
    before = _counts()
    response = _client(edge_1.token).generic(
        "POST", _path(edge_1), data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert errors[0]["path"] == "minutes[0].counters[1].increase" and message in errors[0]["message"]
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"sent_at": "soon"}, "sent_at"),
        ({"sent_at": "2999-01-01T00:00:00Z"}, "sent_at"),
        ({"sent_at": 10**400}, "sent_at"),
        ({"contract_version": 1e308}, "contract_version"),
        ({"gateway": ["x"]}, "gateway"),
        ({"minutes": "all"}, "minutes"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_batch_fields_get_400_with_their_path(edge_1: Any, change: dict[str, Any], path: str) -> None:
    body = {**_batch({_minute(2): [_requests("ok", 1)]}), **change}
    response = _client(edge_1.token).post(_path(edge_1), body, format="json")
    assert response.status_code == 400
    assert path in [e["path"] for e in response.json()["errors"]]
    assert not PushedMinute.objects.exists()


@pytest.mark.django_db
def test_bad_minutes_labels_and_shapes_get_400_never_500(edge_1: Any) -> None:
    client = _client(edge_1.token)
    ok = _requests("ok", 1)
    cases = [
        ({"minute": "0001-01-01T00:00:00+05:00", "counters": [ok]}, "minutes[0].minute"),
        ({"minute": "9999-12-31T23:59:00-14:00", "counters": [ok]}, "minutes[0].minute"),
        ({"minute": 1e308, "counters": [ok]}, "minutes[0].minute"),
        (
            {
                "minute": _iso(_minute(2)),
                "counters": [{**ok, "labels": {**ok["labels"], "route": "x\u0000"}}],
            },
            "minutes[0].counters[0].labels.route",
        ),
        (
            {"minute": _iso(_minute(2)), "counters": [{**ok, "labels": {**ok["labels"], "service": 1e308}}]},
            "minutes[0].counters[0].labels.service",
        ),
        ({"minute": _iso(_minute(2)), "counters": [{**ok, "name": {"a": 1}}]}, "minutes[0].counters[0].name"),
        (
            {
                "minute": _iso(_minute(2)),
                "counters": [],
                "gauges": [
                    {
                        "name": c.QUEUE_DEPTH,
                        "labels": {"service": "shelf-vision", "tier": "edge"},
                        "value": 1e308,
                    }
                ],
            },
            "minutes[0].gauges[0].value",
        ),
    ]
    for minute, path in cases:
        response = client.post(_path(edge_1), {"contract_version": 1, "minutes": [minute]}, format="json")
        assert response.status_code == 400, (path, response.content)
        assert path in [e["path"] for e in response.json()["errors"]], response.json()
    deep = '{"contract_version": 1, "minutes": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.generic("POST", _path(edge_1), data=deep, content_type="application/json")
    assert response.status_code == 400
    huge_int = '{"contract_version": 1, "minutes": [], "n": ' + "9" * 5000 + "}"
    assert (
        client.generic("POST", _path(edge_1), data=huge_int, content_type="application/json").status_code
        == 400
    )
    too_many = {"contract_version": 1, "minutes": [{"minute": _iso(_minute(2)), "counters": [ok] * 100_001}]}
    assert client.post(_path(edge_1), too_many, format="json").status_code == 413
    assert _counts() == [0] * len(TABLES)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_reference_gateway_stamps_its_pushes_and_stays_in_scope(
    live_server: Any, register: Any, services: Any, tmp_path: Any
) -> None:
    credentials = register("edge-1")
    config = load_config(
        None,
        {
            "name": "edge-1",
            "service": "shelf-vision",
            "tier": "edge",
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
    before_push = time.time()
    assert reference.push_telemetry_once() == "accepted"
    stamps = list(
        PushedMinute.objects.filter(source=f"gateway:{credentials.gateway.pk}").values_list("minute", "stamp")
    )
    assert sorted(m for m, _ in stamps) == [start // 60, start // 60 + 1]
    # the stamp is the gateway's sent_at (its wall clock), not the minute
    assert all(before_push * 1e6 - 1e6 <= stamp <= time.time() * 1e6 for _, stamp in stamps)
    assert SliMinute.objects.filter(slo_id=services["availability"].pk).count() == 2

    # over real HTTP, a batch about another service is refused and stores nothing
    before = _counts()
    response = http.post(
        f"{live_server.url}{_path(credentials)}",
        timeout=10,
        json=_batch({_minute(2): [_requests("error", 5000, service="fraud-score")]}),
        headers={"Authorization": f"Bearer {credentials.token}"},
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["path"] == "minutes[0].counters[0].labels.service"
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"applied_revision": 10**30}, "applied_revision"),
        ({"applied_revision": 2**31}, "applied_revision"),
        ({"applied_revision": -1}, "applied_revision"),
        ({"applied_revision": 1e308}, "applied_revision"),
        ({"nack": {"revision": 10**30, "error": "x"}}, "nack"),
        ({"nack": {"revision": -5, "error": "x"}}, "nack"),
    ],
)
def test_heartbeat_revisions_out_of_range_get_400_not_500(
    edge_1: Any, body: dict[str, Any], path: str
) -> None:
    from routing.models.fleet import Gateway

    response = _client(edge_1.token).post(
        f"/api/v1/gateways/{edge_1.gateway.pk}/heartbeat/", body, format="json"
    )
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == [path]
    gateway = Gateway.objects.get(pk=edge_1.gateway.pk)
    assert gateway.last_heartbeat_at is None and gateway.last_nack_revision is None
    largest = {"applied_revision": 2**31 - 1}
    assert (
        _client(edge_1.token)
        .post(f"/api/v1/gateways/{edge_1.gateway.pk}/heartbeat/", largest, format="json")
        .status_code
        == 200
    )
