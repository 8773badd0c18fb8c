"""No 5xx for anything a client can send: each reproduction gets its documented 400 and stores nothing.

Bodies are read by controlplane.api.parsers (nesting depth, NUL), YAML by controlplane.safeload
(aliases, merge keys, document and value counts), query strings by RefuseNulMiddleware, and label
selectors are plain names matched by jsonb containment.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from controlplane.safeload import MAX_DEPTH

pytestmark = pytest.mark.django_db
OPENSLO = Path(__file__).resolve().parents[1] / "fixtures" / "openslo" / "readme-ratio.yaml"


def nested(depth: int) -> str:
    return '{"name": ' + "[" * depth + "]" * depth + "}"


def paths(response: Any) -> set[str]:
    return {error["path"] for error in response.json()["errors"]}


def counts() -> tuple[int, ...]:
    from controlplane.models import AuditEvent
    from routing.models.fleet import Gateway
    from routing.models.releases import Release
    from slo.models import Service, Slo

    return (
        Service.objects.count(),
        Slo.objects.count(),
        Release.objects.count(),
        Gateway.objects.count(),
        AuditEvent.objects.count(),
    )


# ------------------------------------------------------------------------------------- JSON bodies


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/services/",
        "/api/v1/slos/",
        "/api/v1/routing-policies/validate/",
        "/api/v1/releases/",
        "/api/v1/reports/generate/",
    ],
)
def test_json_nested_100k_deep_is_a_400(api_for: Any, service: Any, path: str) -> None:
    client = api_for("operator")
    before = counts()
    response = client.post(path, data=nested(100_000), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested deeper than" in response.json()["errors"][0]["message"]
    assert counts() == before


def test_the_depth_limit_is_exact_and_names_the_path(api_for: Any, service: Any) -> None:
    client = api_for("operator")
    deepest = client.post("/api/v1/services/", data=nested(MAX_DEPTH - 1), content_type="application/json")
    assert deepest.status_code == 400 and "nested" not in str(deepest.json())  # the serializer's own 400
    too_deep = client.post("/api/v1/services/", data=nested(MAX_DEPTH), content_type="application/json")
    assert too_deep.status_code == 400
    (path,) = paths(too_deep)
    assert path.startswith("name[0][0]")


def test_a_nul_in_a_release_field_is_a_400_naming_it(api_for: Any, service: Any) -> None:
    client = api_for("operator")
    before = counts()
    response = client.post(
        "/api/v1/releases/",
        {
            "service": "shelf-vision",
            "title": "v2\x00",
            "reason": "ship",
            "routing_policy_version": 1,
        },
        format="json",
    )
    assert response.status_code == 400
    assert paths(response) == {"title"}
    assert counts() == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "edge-latency\x00"},
        {"name": "x", "labels": {"te\x00am": "vision"}},
        {"name": "x", "labels": {"team": ["a", "b\x00"]}},
    ],
)
def test_a_nul_anywhere_in_a_json_body_is_a_400(api_for: Any, service: Any, body: dict[str, Any]) -> None:
    client = api_for("operator")
    before = counts()
    response = client.post("/api/v1/slos/", body, format="json")
    assert response.status_code == 400
    assert "NUL" in response.json()["errors"][0]["message"]
    assert counts() == before


def test_a_nul_in_a_form_body_is_a_400(api_for: Any, users: Any) -> None:
    client = api_for("admin")
    before = counts()
    response = client.post(
        "/api/v1/alertmanager/secrets/", "name=am%00", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400 and paths(response) == {"name[0]"}
    assert counts() == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/openslo/export/?service=%00",
        "/api/v1/slos/?service=shelf%00vision",
        "/api/v1/routing-policies/%00/",
        "/api/v1/audit-events/?obj%00=1",
    ],
)
def test_a_nul_in_the_url_is_a_400(api_for: Any, service: Any, url: str) -> None:
    response = api_for("viewer").get(url)
    assert response.status_code == 400
    assert "NUL" in response.json()["errors"][0]["message"]


def test_a_nul_in_a_page_url_is_a_plain_400(client: Any, users: Any) -> None:
    client.force_login(users["viewer"])
    response = client.get("/audit/?actor=%00")
    assert response.status_code == 400


# ----------------------------------------------------------------------------------- label filters


@pytest.fixture
def gateways(users: Any, service: Any) -> list[Any]:
    from routing.fleet.services import gateway_register

    return [
        gateway_register(
            actor=users["operator"],
            data={
                "name": f"edge-{i}",
                "service": "shelf-vision",
                "tier": "edge",
                "labels": {"site": f"s{i}"},
            },
        ).gateway
        for i in range(3)
    ]


@pytest.mark.parametrize(
    "label", ["site__isnull=false", "site__regex=.*", "a__b=1", "1site=s1", "si te=s1", "=s1", "site"]
)
def test_the_gateway_label_filter_takes_plain_keys_only(
    api_for: Any, gateways: list[Any], label: str
) -> None:
    response = api_for("viewer").get("/api/v1/gateways/", {"label": label})
    assert response.status_code == 400
    assert paths(response) == {"label"}


def test_the_gateway_label_filter_matches_key_and_value(api_for: Any, gateways: list[Any]) -> None:
    response = api_for("viewer").get("/api/v1/gateways/", {"label": "site=s1"})
    assert response.status_code == 200
    assert [g["name"] for g in response.json()["results"]] == ["edge-1"]
    assert api_for("viewer").get("/api/v1/gateways/", {"label": "site=nope"}).json()["results"] == []
    assert api_for("viewer").get("/api/v1/gateways/", {"label": "rack.id-2=x"}).status_code == 200


# ------------------------------------------------------------------------------------------- YAML


def post_yaml(client: Any, url: str, text: str) -> Any:
    return client.post(url, data=text, content_type="application/yaml")


ALIASES = "a: &x [1, 2]\nb: *x\n"
MERGE = "base: {x: 1}\nother:\n  <<: {y: 2}\n"
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (ALIASES, "aliases"),
        (BILLION_LAUGHS, "aliases"),
        (MERGE, "merge keys"),
        ("a: " + "[" * 100_000, "nest"),
        ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH}"),
        ('a: "x\\0y"', "NUL"),
        ("a: !!int 12x", "invalid YAML value"),
    ],
)
def test_openslo_import_refuses_unsafe_yaml(api_for: Any, text: str, reason: str) -> None:
    client = api_for("operator")
    before = counts()
    response = post_yaml(client, "/api/v1/openslo/import/", text)
    assert response.status_code == 400
    assert reason in str(response.json()["errors"])
    assert counts() == before


def test_openslo_import_caps_documents_quickly(api_for: Any) -> None:
    text = "".join(
        f"---\napiVersion: openslo/v1\nkind: Service\nmetadata: {{name: s{i}}}\n" for i in range(50_000)
    )
    started = time.monotonic()
    response = post_yaml(api_for("operator"), "/api/v1/openslo/import/", text)
    elapsed = time.monotonic() - started
    assert response.status_code == 400
    assert "more than 1000 documents" in str(response.json()["errors"])
    assert elapsed < 3, elapsed  # was 27 s


def test_openslo_import_caps_values(api_for: Any) -> None:
    text = (
        "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: s}\nspec:\n  x: [" + "1," * 100_001 + "1]\n"
    )
    response = post_yaml(api_for("operator"), "/api/v1/openslo/import/", text)
    assert response.status_code == 400
    assert "more than 100000 values" in str(response.json()["errors"])


def test_ordinary_openslo_still_imports(api_for: Any) -> None:
    response = post_yaml(api_for("operator"), "/api/v1/openslo/import/", OPENSLO.read_text())
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("text", "reason"), [(ALIASES, "aliases"), (MERGE, "merge keys"), ("a: 1\na: 2\n", "duplicate")]
)
def test_routing_documents_refuse_unsafe_yaml(api_for: Any, service: Any, text: str, reason: str) -> None:
    client = api_for("operator")
    before = counts()
    response = post_yaml(client, "/api/v1/routing-policies/validate/?service=shelf-vision", text)
    assert response.status_code == 400
    assert reason in str(response.json()["errors"])
    assert counts() == before
