"""Decision records: `POST /api/v1/gateways/<id>/decisions/` and `GET /api/v1/decisions/`
(PostgreSQL; a real reference gateway pushing to a live server)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.launch import start_gateway, stop_gateways, wait_ready
from tests.gateway.support import free_port

pytestmark = pytest.mark.django_db


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _at(minutes_ago: float = 1) -> str:
    return (timezone.now() - timedelta(minutes=minutes_ago)).isoformat()


def _record(request_id: str, **overrides) -> dict:
    record = {
        "request_id": request_id,
        "at": _at(),
        "rule": "low-confidence",
        "chain": ["local", "public_cloud"],
        "route": "public_cloud",
        "cache": [{"layer": "result", "result": "miss", "key": ["input_hash"]}],
        "model_version": "v3",
        "revision": 2,
        "outcome": "ok",
        "latency_ms": 150.0,
    }
    record.update(overrides)
    return record


def _batch(*records: dict, gateway: str = "edge-1") -> dict:
    return {"contract_version": 1, "gateway": gateway, "records": list(records)}


def test_records_are_filed_under_the_registration_and_found_by_request_id(register, api_for):
    credentials = register("edge-1", region="eu-central")
    path = f"/api/v1/gateways/{credentials.gateway.pk}/decisions/"
    # the batch claims another gateway name: the registration decides where records are filed
    response = _client(credentials.token).post(
        path, _batch(_record("req-a"), _record("req-b"), gateway="other"), format="json"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["result"] == {"records": 2, "stored": 2}
    again = _client(credentials.token).post(path, _batch(_record("req-a")), format="json")
    assert again.json()["result"] == {"records": 1, "stored": 0}  # a re-sent record is not stored twice

    found = api_for("viewer").get("/api/v1/decisions/", {"request_id": "req-a"})
    assert found.status_code == 200
    (record,) = found.json()["results"]
    assert (record["service"], record["tier"], record["region"], record["gateway"]) == (
        "shelf-vision",
        "edge",
        "eu-central",
        credentials.gateway.pk,
    )
    assert (record["rule"], record["chain"], record["route"], record["revision"]) == (
        "low-confidence",
        ["local", "public_cloud"],
        "public_cloud",
        2,
    )


def test_a_gateway_cannot_write_records_for_another_gateway(register, api_for):
    one, two = register("edge-1"), register("edge-2", region="us-east")
    path = f"/api/v1/gateways/{one.gateway.pk}/decisions/"
    assert _client(two.token).post(path, _batch(_record("x")), format="json").status_code == 403
    assert api_for("admin").post(path, _batch(_record("x")), format="json").status_code == 401
    assert APIClient().post(path, _batch(_record("x")), format="json").status_code == 401
    own = f"/api/v1/gateways/{two.gateway.pk}/decisions/"
    assert _client(two.token).post(own, _batch(_record("y")), format="json").status_code == 202
    records = api_for("viewer").get("/api/v1/decisions/").json()["results"]
    assert [(r["request_id"], r["gateway"], r["region"]) for r in records] == [
        ("y", two.gateway.pk, "us-east")
    ]


def test_a_bad_batch_is_a_400_with_paths_and_stores_nothing(register):
    from routing.models.decisions import DecisionRecord

    credentials = register("edge-1")
    path = f"/api/v1/gateways/{credentials.gateway.pk}/decisions/"
    response = _client(credentials.token).post(
        path,
        _batch(_record("ok-1"), _record("bad", outcome="maybe"), _record("old", at=_at(60 * 24 * 8))),
        format="json",
    )
    assert response.status_code == 400
    assert {(e["path"], e["message"]) for e in response.json()["errors"]} == {
        ("records[1].outcome", "one of ok, error, timeout, shed"),
        ("records[2].at", "older than the retention: not stored"),
    }
    assert not DecisionRecord.objects.exists()


def test_the_search_filters_paginates_and_400s_on_bad_filters(register, api_for):
    credentials = register("edge-1")
    client = _client(credentials.token)
    path = f"/api/v1/gateways/{credentials.gateway.pk}/decisions/"
    records = [
        _record(
            f"r{i}",
            at=_at(10 - i),
            route="local" if i % 2 else "public_cloud",
            rule="edge" if i % 2 else "low-confidence",
        )
        for i in range(6)
    ]
    assert client.post(path, _batch(*records), format="json").status_code == 202
    viewer = api_for("viewer")
    local = viewer.get("/api/v1/decisions/", {"route": "local", "service": "shelf-vision"}).json()
    assert [r["request_id"] for r in local["results"]] == ["r5", "r3", "r1"]  # newest first
    page = viewer.get(
        "/api/v1/decisions/", {"limit": 2, "offset": 2, "gateway": credentials.gateway.pk}
    ).json()
    assert page["count"] == 6 and [r["request_id"] for r in page["results"]] == ["r3", "r2"]
    windowed = viewer.get(
        "/api/v1/decisions/", {"since": _at(8.5), "until": _at(6.5), "rule": "low-confidence"}
    )
    assert [r["request_id"] for r in windowed.json()["results"]] == ["r2"]
    bad = viewer.get("/api/v1/decisions/", {"since": "yesterday", "gateway": "x", "request_id": "a b"})
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json()["errors"]} == {"since", "gateway", "request_id"}


def test_a_record_carries_the_sli_figures_of_its_minute(register, api_for, users, slo_doc):
    from slo.models.telemetry import SliMinute
    from slo.services import slo_create

    credentials = register("edge-1")
    first = slo_create(actor=users["operator"], data=slo_doc)
    slo_create(actor=users["operator"], data={**slo_doc, "name": "edge-latency-strict"})
    at = timezone.now().replace(second=20, microsecond=0) - timedelta(minutes=3)
    minute = int(at.timestamp() // 60)
    SliMinute.objects.create(slo=first, minute=minute, source="gateway:1", good=95, valid=100)
    client = _client(credentials.token)
    assert (
        client.post(
            f"/api/v1/gateways/{credentials.gateway.pk}/decisions/",
            _batch(_record("joined", at=at.isoformat())),
            format="json",
        ).status_code
        == 202
    )
    (record,) = api_for("viewer").get("/api/v1/decisions/", {"request_id": "joined"}).json()["results"]
    assert record["sli_minute"]["minute"] == at.replace(second=0).isoformat().replace("+00:00", "Z")
    figures = {f["slo"]: f for f in record["sli_minute"]["slos"]}
    assert set(figures) == {"edge-latency", "edge-latency-strict"}  # the SLOs of the record's tier
    assert figures[first.name]["present"] is True
    assert (figures[first.name]["good"], figures[first.name]["valid"], figures[first.name]["ratio"]) == (
        95,
        100,
        0.95,
    )
    for name, figure in figures.items():
        if name != first.name:  # no telemetry that minute: missing, not zero
            assert figure["present"] is False and figure["valid"] is None


def test_retention_deletes_old_records_only(register):
    from routing.fleet.decisions import decision_records_retention_enforce, decision_retention
    from routing.models.decisions import DecisionRecord

    gateway = register("edge-1").gateway
    now = timezone.now()
    for request_id, age in (
        ("old", decision_retention() + timedelta(minutes=1)),
        ("young", decision_retention() - timedelta(minutes=1)),
    ):
        moment = now - age
        DecisionRecord.objects.create(
            gateway=gateway,
            service="shelf-vision",
            tier="edge",
            request_id=request_id,
            at=moment,
            minute=int(moment.timestamp() // 60),
            route="local",
            outcome="ok",
            latency_ms=1.0,
        )
    assert decision_records_retention_enforce(now=now) == 1
    assert list(DecisionRecord.objects.values_list("request_id", flat=True)) == ["young"]


@pytest.mark.django_db(transaction=True)
def test_a_request_id_from_the_gateways_log_is_found_with_its_rule_and_route(
    live_server, register, api_for, tmp_path
):
    credentials = register("edge-live")
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[gateway]\n"
        f'name = "edge-live"\nservice = "shelf-vision"\ntier = "edge"\nid = {credentials.gateway.pk}\n'
        f'listen = "127.0.0.1:{port}"\nstate_dir = "{tmp_path / "state"}"\nseed = 3\n'
        "[control_plane]\n"
        f'url = "{live_server.url}"\ntoken = "{credentials.token}"\npoll_interval_s = 0\n'
        "heartbeat_interval_s = 0\npush_telemetry = true\ntelemetry_interval_s = 0.5\ndecision_sample = 5\n"
        "[traffic]\nrps = 50\ntick_s = 0.2\n"
    )
    process = start_gateway(config)
    log = tmp_path / "gateway.log"
    try:
        assert wait_ready("127.0.0.1", port, timeout_s=30, process=process), log.read_text()[-2000:]
        pattern = re.compile(r"decision request_id=(\w+) rule=(\S+) route=(\S+) chain=(\S+)")
        viewer = api_for("viewer")
        deadline = time.monotonic() + 30
        found = None
        while time.monotonic() < deadline and found is None:
            time.sleep(0.5)
            for request_id, rule, route, chain in pattern.findall(log.read_text()):
                answer = viewer.get("/api/v1/decisions/", {"request_id": request_id}).json()["results"]
                if answer:
                    found = (answer[0], rule, route, chain)
                    break
        assert found is not None, log.read_text()[-3000:]
        record, rule, route, chain = found
        assert record["rule"] == (None if rule == "None" else rule)
        assert record["route"] == route and ",".join(record["chain"]) == chain
        assert record["gateway"] == credentials.gateway.pk and record["service"] == "shelf-vision"
        assert record["outcome"] in ("ok", "error", "timeout", "shed")
        assert requests.get(f"http://127.0.0.1:{port}/status", timeout=5).ok
    finally:
        stop_gateways([process])
