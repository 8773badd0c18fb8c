"""No client input reaches a 5xx: each reproduction from the attack on a running instance gets the
documented 4xx, stores nothing, and leaves the server answering valid requests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.security.live.conftest import assert_still_working
from tests.security.live.support import LiveServer

DEPTH = 100_000
JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}
# 50,000 tiny, valid documents: the size of the stream, not a broken document, is what gets refused
MANY_SERVICES = "".join(
    f"---\n{{apiVersion: openslo/v1, kind: Service, metadata: {{name: s{i}}}}}\n" for i in range(50_000)
).encode()
OPENSLO = (Path(__file__).resolve().parents[2] / "fixtures" / "openslo" / "readme-ratio.yaml").read_text()


def counts() -> dict[str, int]:
    from routing.models.documents import CacheConfigDocument, RoutingPolicyDocument
    from routing.models.releases import Release
    from slo.models import Service, Slo

    return {
        model.__name__: model.objects.count()
        for model in (Service, Slo, RoutingPolicyDocument, CacheConfigDocument, Release)
    }


def deep(field: str | None) -> str:
    """A JSON body nested DEPTH levels deep, at the top or under one field of an object."""
    nested = "[" * DEPTH + "]" * DEPTH
    return nested if field is None else json.dumps({field: "__X__"}).replace('"__X__"', nested)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/routing-policies/validate/", None),
        ("/api/v1/routing-policies/validate/", "service"),
        ("/api/v1/cache-configs/validate/", "service"),
        ("/api/v1/services/", None),
        ("/api/v1/services/", "labels"),
        ("/api/v1/slos/", "sli"),
    ],
)
def test_json_nested_100k_deep_is_a_400(
    live: LiveServer, catalog: dict[str, Any], as_role: Any, path: str, field: str | None
) -> None:
    before = counts()
    response = as_role("operator").post(path, data=deep(field), headers=JSON)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith(("application/json", "application/problem+json"))
    assert counts() == before
    assert_still_working(live, as_role("operator"))


@pytest.fixture
def versions(users: dict[str, Any], catalog: dict[str, Any]) -> None:
    """Routing policy v1 of shelf-vision, written by otto and approved by anna (shippable)."""
    from routing.documents.services import routing_policy_approve, routing_policy_create
    from routing.policy import default_policy

    line = routing_policy_create(
        actor=users["operator"],
        service=catalog["services"]["shelf-vision"],
        document=default_policy("shelf-vision", "interactive", 500),
    )
    routing_policy_approve(actor=users["approver"], line_id=line.pk, version=1)


def release(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service": "shelf-vision",
        "title": "t",
        "reason": "r",
        "routing_policy_version": 1,
        "target": {"tier": "edge"},
        "waves": [{"percent": 100, "bake_s": 0}],
    }
    for key, value in changes.items():
        if key.startswith("target."):
            body["target"][key.removeprefix("target.")] = value
        else:
            body[key] = value
    return body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "ship\x00it"),
        ("reason", "because\x00"),
        ("target.region", "eu\x00west"),
        ("target.labels", {"site": "s\x001"}),
        ("target.labels", {"si\x00te": "s1"}),
    ],
)
def test_a_nul_byte_in_a_release_field_is_a_400(
    live: LiveServer, versions: None, as_role: Any, field: str, value: Any
) -> None:
    before = counts()
    operator = as_role("operator")
    response = operator.post("/api/v1/releases/", json=release(**{field: value}))
    assert response.status_code == 400, (response.status_code, response.text[:300])
    paths = [e.get("path", "") for e in response.json().get("errors", [])]
    assert any(p.startswith(field) for p in paths), paths
    assert counts() == before
    assert operator.post("/api/v1/releases/", json=release()).status_code == 201
    assert_still_working(live, operator)


@pytest.mark.parametrize("key", ["a__isnull", "a__regex", "site__regex", "site__contains", "site__0"])
def test_release_target_label_keys_are_plain_names(
    live: LiveServer, versions: None, as_role: Any, key: str
) -> None:
    before = counts()
    operator = as_role("operator")
    response = operator.post("/api/v1/releases/", json=release(**{"target.labels": {key: "true"}}))
    assert response.status_code == 400, (response.status_code, response.text[:300])
    paths = [e.get("path", "") for e in response.json().get("errors", [])]
    assert any(p.startswith("target.labels") for p in paths), paths
    assert counts() == before
    assert_still_working(live, operator)


@pytest.mark.parametrize("path", ["/api/v1/gateways/", "/api/v1/fleet/"])
@pytest.mark.parametrize(
    "label", ["site__regex=^s", "site__isnull=false", "a__isnull=true", "site__startswith=s"]
)
def test_the_gateway_label_filter_is_no_orm_lookup(
    live: LiveServer, catalog: dict[str, Any], as_role: Any, path: str, label: str
) -> None:
    viewer = as_role("viewer")
    response = viewer.get(path, params={"label": label})
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert "label" in response.text
    plain = viewer.get(path, params={"label": "site=s1"})
    assert plain.status_code == 200 and "edge-1" in plain.text
    assert_still_working(live, viewer)


def test_openslo_aliases_are_refused(live: LiveServer, users: dict[str, Any], as_role: Any) -> None:
    """A document that uses anchors and aliases (the billion-laughs shape, here kept small)."""
    before = counts()
    aliased = OPENSLO.replace(
        "        good:\n          metricSource:", "        good: &source\n          metricSource:", 1
    )
    aliased = aliased.replace(
        "        total:\n          metricSource:\n            type: Prometheus\n"
        '            spec:\n              query: sum(http_requests_total{service="foo"})',
        "        total: *source",
    )
    assert "*source" in aliased
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    )
    operator = as_role("operator")
    for text in (aliased, laughs):
        response = operator.post("/api/v1/openslo/import/", data=text.encode(), headers=YAML)
        assert response.status_code == 400, (response.status_code, response.text[:300])
        assert "alias" in response.text.lower() or "anchor" in response.text.lower(), response.text[:300]
    assert counts() == before
    assert operator.post("/api/v1/openslo/import/", data=OPENSLO.encode(), headers=YAML).status_code == 201
    assert_still_working(live, operator)


def test_openslo_merge_keys_are_refused(live: LiveServer, users: dict[str, Any], as_role: Any) -> None:
    before = counts()
    merged = OPENSLO.replace(
        "spec:\n  description: The foo HTTP API", "spec:\n  <<: {description: The foo HTTP API}", 1
    )
    assert "<<:" in merged
    operator = as_role("operator")
    response = operator.post("/api/v1/openslo/import/", data=merged.encode(), headers=YAML)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert "merge" in response.text.lower() or "<<" in response.text, response.text[:300]
    assert counts() == before
    assert_still_working(live, operator)


@pytest.mark.slow
def test_openslo_50000_documents_are_refused_quickly(
    live: LiveServer, users: dict[str, Any], as_role: Any
) -> None:
    before = counts()
    operator = as_role("operator")
    started = time.monotonic()
    response = operator.post("/api/v1/openslo/import/", data=MANY_SERVICES, headers=YAML)
    elapsed_s = time.monotonic() - started
    assert response.status_code in (400, 413), (response.status_code, response.text[:300])
    assert elapsed_s < 5, f"refusing 50,000 documents took {elapsed_s:.1f}s"
    assert counts() == before
    assert_still_working(live, operator)


def test_an_impossible_instant_is_a_400(live: LiveServer, catalog: dict[str, Any], as_role: Any) -> None:
    """Well-formed ISO 8601 with minute 60 (found by the schema run): a 400 naming the field."""
    from slo.models.budget import CostModel

    impossible = "2026-01-01T00:60:00+00:00"
    admin = as_role("admin")
    created = admin.post(
        "/api/v1/cost-models/",
        json={
            "effective_from": impossible,
            "prices": {"request_fee_usd": {"public_cloud": 0.001}, "cache_usd_per_lookup": 0.0001},
        },
    )
    assert created.status_code == 400, (created.status_code, created.text[:300])
    assert created.json()["errors"][0]["path"] == "effective_from"
    assert not CostModel.objects.exists()
    series = admin.get(f"/api/v1/slos/{catalog['slo'].pk}/timeseries/", params={"start": impossible})
    assert series.status_code == 400, (series.status_code, series.text[:300])
    assert_still_working(live, admin)
