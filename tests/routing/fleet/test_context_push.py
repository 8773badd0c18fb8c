"""`POST /api/v1/gateways/<id>/contexts/`: a gateway's sampled request contexts (PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _minute(minutes_ago: int) -> str:
    moment = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _batch(*minutes: dict) -> dict:
    return {"contract_version": 1, "gateway": "edge-1", "minutes": list(minutes)}


def test_it_stores_the_sample_under_the_gateways_registration(register):
    from slo.models.contexts import ContextSample

    credentials = register("edge-1", region="eu-central")
    path = f"/api/v1/gateways/{credentials.gateway.pk}/contexts/"
    response = _client(credentials.token).post(
        path,
        _batch(
            {
                "minute": _minute(3),
                "requests": 400,
                "contexts": [{"confidence": 0.4, "email": "a@b.c"}, {"privacy": True}],
            },
        ),
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["result"] == {
        "source": f"gateway:{credentials.gateway.pk}",
        "minutes": 1,
        "stored": 1,
        "contexts": 2,
        "dropped_fields": ["email"],
    }
    row = ContextSample.objects.get()
    assert (row.service, row.tier, row.region, row.requests) == ("shelf-vision", "edge", "eu-central", 400)
    assert row.contexts == [{"confidence": 0.4}, {"privacy": True}]  # a field no policy reads is not kept


def test_a_fuller_sample_replaces_a_minute_and_a_replayed_smaller_one_does_not(register):
    from slo.models.contexts import ContextSample

    credentials = register("edge-1")
    client = _client(credentials.token)
    path = f"/api/v1/gateways/{credentials.gateway.pk}/contexts/"
    minute = _minute(0)  # the minute in progress: sent as it fills
    partial = {"minute": minute, "requests": 10, "contexts": [{"confidence": 0.1}]}
    fuller = {"minute": minute, "requests": 600, "contexts": [{"confidence": 0.9}, {"confidence": 0.8}]}
    assert client.post(path, _batch(partial), format="json").status_code == 202
    assert client.post(path, _batch(fuller), format="json").json()["result"]["stored"] == 1
    replay = client.post(path, _batch(partial), format="json")
    assert replay.status_code == 202 and replay.json()["result"]["stored"] == 0
    row = ContextSample.objects.get()
    assert row.requests == 600 and row.contexts == [{"confidence": 0.9}, {"confidence": 0.8}]


def test_a_bad_batch_is_a_400_with_paths_and_stores_nothing(register):
    from slo.models.contexts import ContextSample

    credentials = register("edge-1")
    path = f"/api/v1/gateways/{credentials.gateway.pk}/contexts/"
    response = _client(credentials.token).post(
        path,
        _batch(
            {"minute": _minute(2), "requests": 5, "contexts": [{"confidence": 0.5}]},
            {"minute": _minute(1), "requests": 5, "contexts": [{"confidence": "sure"}]},
            {"minute": _minute(60 * 25), "requests": 5, "contexts": []},
        ),
        format="json",
    )
    assert response.status_code == 400
    assert {(e["path"], e["message"]) for e in response.json()["errors"]} == {
        ("minutes[1].contexts[0].confidence", "must be a finite number"),
        ("minutes[2].minute", "is older than the retention"),
    }
    assert not ContextSample.objects.exists()


def test_only_the_gateway_itself_may_push_its_contexts(register, api_for):
    one, two = register("edge-1"), register("edge-2")
    path = f"/api/v1/gateways/{one.gateway.pk}/contexts/"
    body = _batch({"minute": _minute(2), "requests": 1, "contexts": [{}]})
    assert api_for("admin").post(path, body, format="json").status_code == 401
    assert _client(two.token).post(path, body, format="json").status_code == 403
    assert APIClient().post(path, body, format="json").status_code == 401


def test_the_telemetry_retention_deletes_old_samples_of_every_source():
    from slo.models.contexts import ContextSample
    from slo.telemetry.context_services import CONTEXT_RETENTION
    from slo.telemetry.retention import telemetry_retention_enforce

    now = timezone.now()
    newest_old = int((now - CONTEXT_RETENTION).timestamp() // 60) - 1
    ContextSample.objects.bulk_create(
        [
            ContextSample(service="s", minute=newest_old, source="gateway:gone", requests=1, contexts=[{}]),
            ContextSample(service="s", minute=newest_old + 2, source="gateway:1", requests=1, contexts=[{}]),
        ]
    )
    assert telemetry_retention_enforce(now=now)["context_samples"] == 1
    assert list(ContextSample.objects.values_list("source", flat=True)) == ["gateway:1"]
