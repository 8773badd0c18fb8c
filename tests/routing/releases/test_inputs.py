"""The declared release request bodies (routing/releases/inputs.py): every problem keeps the field
path and the stored form the hand-written parsers they replace gave (the expected values below were
recorded from those parsers)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.errors import ValidationFailed
from routing.releases import inputs, machine

MAX = inputs.MAX_BAKE_S
DEFAULT_PLAN = [{"percent": p, "bake_s": b} for p, b in machine.DEFAULT_WAVES]


def _waves(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    body, problems = inputs.parse_partial(inputs.ReleaseDraftInput, {"waves": raw})
    if body.waves is None:
        return DEFAULT_PLAN, [p.path for p in problems]
    plan, order = inputs.wave_plan_problems(body.waves)
    return plan, sorted(p.path for p in [*problems, *order])


def _target(raw: Any) -> tuple[dict[str, Any], list[str]]:
    body, problems = inputs.parse_partial(inputs.ReleaseDraftInput, {"target": raw})
    return (body.target.selector() if body.target else {}), sorted(p.path for p in problems)


@pytest.mark.parametrize(
    ("raw", "plan", "paths"),
    [
        (None, DEFAULT_PLAN, []),
        ([{"percent": 100}], [{"percent": 100.0, "bake_s": 0}], []),
        (
            [{"percent": 10, "bake_s": 60}, {"percent": 100}],
            [{"percent": 10.0, "bake_s": 60}, {"percent": 100.0, "bake_s": 0}],
            [],
        ),
        (
            [{"percent": 10.5, "bake_s": 0, "extra": 1}, {"percent": 100, "bake_s": MAX}],
            [{"percent": 10.5, "bake_s": 0}, {"percent": 100.0, "bake_s": MAX}],
            [],
        ),
        ([], None, ["waves"]),
        ("x", None, ["waves"]),
        ([{"percent": 100}] * 11, None, ["waves"]),
        ([{"percent": 50}], None, ["waves"]),
        ([{"percent": 100, "bake_s": -1}], None, ["waves[0].bake_s"]),
        ([{"percent": 100, "bake_s": 1.5}], None, ["waves[0].bake_s"]),
        ([{"percent": 100, "bake_s": True}], None, ["waves[0].bake_s"]),
        ([{"percent": 100, "bake_s": MAX + 1}], None, ["waves[0].bake_s"]),
        ([{"percent": True}], None, ["waves[0].percent"]),
        ([{"percent": "10"}], None, ["waves[0].percent"]),
        ([{"percent": 0}], None, ["waves[0].percent"]),
        ([{"percent": 101}], None, ["waves[0].percent"]),
        ([{"bake_s": 5}], None, ["waves[0].percent"]),
        ([{"percent": 50}, {"percent": 40}, {"percent": 100}], None, ["waves[1].percent"]),
        ([1, {"percent": 100}], None, ["waves[0]"]),
    ],
)
def test_it_reads_a_wave_plan_as_the_hand_parser_did(raw: Any, plan: Any, paths: list[str]) -> None:
    got_plan, got_paths = _waves(raw)
    assert got_paths == paths
    if plan is not None:
        assert got_plan == plan


@pytest.mark.parametrize(
    ("raw", "selector", "paths"),
    [
        (None, {}, []),
        ({}, {}, []),
        ({"tier": "edge"}, {"tier": "edge"}, []),
        ({"tier": ""}, {}, []),
        ({"tier": None, "region": None, "labels": None, "gateways": None}, {}, []),
        ({"labels": {"zone": "a"}}, {"labels": {"zone": "a"}}, []),
        ({"gateways": [3, "1", 3]}, {"gateways": [1, 3]}, []),
        ("x", None, ["target"]),
        ([], None, ["target"]),
        ({"tier": 3}, None, ["target.tier"]),
        ({"region": "eu", "bogus": 1}, None, ["target.bogus"]),
        ({"labels": {"zone": 1}}, None, ["target.labels"]),
        ({"labels": "x"}, None, ["target.labels"]),
        ({"labels": {"Bad Key!": "a", "ok": "b"}}, None, ["target.labels.Bad Key!"]),
        ({"gateways": []}, None, ["target.gateways"]),
        ({"gateways": [True]}, None, ["target.gateways"]),
        ({"gateways": [1.0]}, None, ["target.gateways"]),
        ({"gateways": ["x"]}, None, ["target.gateways"]),
        ({"gateways": "1"}, None, ["target.gateways"]),
    ],
)
def test_it_reads_a_target_selector_as_the_hand_parser_did(raw: Any, selector: Any, paths: list[str]) -> None:
    got_selector, got_paths = _target(raw)
    assert got_paths == paths
    if selector is not None:
        assert got_selector == selector


def test_it_names_every_shape_problem_of_a_create_body_unknown_fields_first() -> None:
    body = {
        "service": "x",
        "kind": "yolo",
        "title": "t" * 201,
        "confirm_wave_sizes": 1,
        "extra": 1,
        "routing_policy_version": 0,
        "model_version": True,
        "cache_config_version": "2",
    }
    parsed, problems = inputs.parse_partial(inputs.ReleaseDraftInput, body)
    assert [p.path for p in problems] == [
        "extra",
        "kind",
        "title",
        "routing_policy_version",
        "model_version",
        "confirm_wave_sizes",
    ]
    messages = {p.path: p.message for p in problems}
    assert messages["extra"] == "unknown field"
    assert messages["kind"] == "one of normal, hotfix, rollback"
    assert messages["routing_policy_version"] == "a version number of the service's document"
    # the valid fields stay for the checks only the database can make
    assert parsed.service == "x" and parsed.cache_config_version == 2 and parsed.kind == "normal"


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T10:00:00+02:00", "2026-01-01T10:00:00+02:00"),
    ],
)
def test_it_reads_an_instant_with_its_timezone(value: str, iso: str) -> None:
    assert inputs.parse_at(value).isoformat() == iso


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "2026-01-01T00:60:00Z", "garbage", 5, None, True])
def test_it_refuses_an_instant_without_a_timezone_or_not_a_time(value: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        inputs.parse_at(value, "at")
    assert [p["path"] for p in refused.value.problems] == ["at"]


def test_it_keeps_canary_numbers_as_sent_and_names_each_bad_criterion() -> None:
    body = inputs.parse_input(inputs.ReleaseSettingsInput, {"canary": {"failure_limit": 3}}, detail="x")
    assert body.canary == {"failure_limit": 3} and isinstance(body.canary["failure_limit"], int)
    assert body.alert_severities == ["page"] and body.required_approvals == 1
    with pytest.raises(ValidationFailed) as refused:
        inputs.parse_input(
            inputs.ReleaseSettingsInput,
            {
                "alert_severities": [],
                "required_approvals": True,
                "canary": {"nope": 1, "failure_limit": -1},
                "z": 0,
            },
            detail="invalid release settings",
            messages=inputs.SETTINGS_MESSAGES,
        )
    paths = [p["path"] for p in refused.value.problems]
    assert paths == ["z", "alert_severities", "required_approvals", "canary.nope", "canary.failure_limit"]


DIGEST = "sha256:" + "a" * 64


def test_a_model_version_body_gets_every_problem_with_its_path(service, api_for):
    operator = api_for("operator")
    response = operator.post(
        "/api/v1/models/",
        {
            "service": "nope",
            "name": "Bad Name",
            "version": "1",
            "training_data_snapshot": "  ",
            "artifact_digest": DIGEST,
            "rollback_target": "x",
            "colour": "red",
        },
        format="json",
    )
    assert response.status_code == 400
    errors = [(e["path"], e["message"]) for e in response.json()["errors"]]
    assert errors == [
        ("colour", "unknown field"),
        ("rollback_target", "unknown model version id"),
        ("name", "required: lowercase letters, digits and dashes"),
        ("training_data_snapshot", "required: the dataset and its snapshot id"),
        ("service", "unknown service"),
    ]
    created = operator.post(
        "/api/v1/models/",
        {
            "service": service.pk,
            "name": "det",
            "version": "1",
            "training_data_snapshot": "d@1",
            "artifact_digest": DIGEST,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    changed = operator.patch(
        f"/api/v1/models/{created.json()['id']}/",
        {"name": "other", "colour": "red", "description": 5},
        format="json",
    )
    assert [(e["path"], e["message"]) for e in changed.json()["errors"]] == [
        ("colour", "unknown field"),
        ("name", "fixed once created (provenance): register a new version"),
        ("description", "a string"),
    ]


def test_a_webhook_secret_name_and_a_provenance_gateway_are_declared(service, api_for):
    refused = api_for("admin").post("/api/v1/alertmanager/secrets/", {"name": "Not OK"}, format="json")
    assert refused.status_code == 400
    assert [(e["path"], e["message"]) for e in refused.json()["errors"]] == [
        ("name", "lowercase letters, digits and dashes")
    ]
    for query in ("gateway=x", "gateway=1.5", "gateway=true", ""):
        bad = api_for("viewer").get(f"/api/v1/provenance/?{query}")
        assert bad.status_code == 400
        assert [(e["path"], e["message"]) for e in bad.json()["errors"]] == [("gateway", "a gateway id")]
    late = api_for("viewer").get("/api/v1/provenance/?gateway=1&at=2026-01-01T00:00:00")
    assert late.status_code == 400 and late.json()["errors"][0]["path"] == "at"
