"""Schemathesis over every operation of the served OpenAPI schema, for every role, against a live
the web server, granian (DEBUG off, PostgreSQL, Redis): no answer may be a 5xx, and every answer must match the
schema (status code, content type, body; YAML-returning operations included).

Roles: anonymous, viewer, operator, approver and admin (user bearer tokens), a gateway (`gw_`
token, on the gateway-facing operations) and Alertmanager (`amw_` secret, on the webhook). The
database is seeded through the API first, so every case whose path names an object is also sent
with the id of one that exists (past the 404). A stateful run then follows OpenAPI links from each
create to the operations on the created object.

Examples are bounded (SCHEMA_MAX_EXAMPLES, default 2 per operation and generation mode) so the
module stays within a few minutes on 2 cores; the totals are printed (`-s`) for docs/proof.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.deserialization import get_yaml_loader
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.media_types import YAML_MEDIA_TYPES

from tests.schema.live import ID_PARAMETERS, Tally, add_links, spec
from tests.security.live.conftest import BEHIND_PROXY
from tests.security.live.support import PROTO_HEADER, LiveServer, redis_flush, redis_url

MAX_EXAMPLES = int(os.environ.get("SCHEMA_MAX_EXAMPLES", "2"))
STATEFUL_STEPS = int(os.environ.get("SCHEMA_STATEFUL_EXAMPLES", "15"))
USER_ROLES = ("viewer", "operator", "approver", "admin")
ROLES = (None, *USER_ROLES, "gateway", "alertmanager")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
DIGEST = "sha256:" + "ab" * 32


@schemathesis.deserializer(*YAML_MEDIA_TYPES)
def _yaml_stream(context: Any, response: Any) -> Any:
    """YAML answers may be a stream of documents (an OpenSLO export is one per object): each must
    parse; a single document is validated as itself, a stream as the list of its documents."""
    documents = list(yaml.load_all(response.content, Loader=get_yaml_loader()))
    return documents[0] if len(documents) == 1 else documents


_document = spec()
LINKS = add_links(_document)
schema = schemathesis.openapi.from_dict(_document)
TALLY = Tally()


def _schemes(operation: Any) -> set[str]:
    return {name for requirement in operation.definition.raw.get("security", []) for name in requirement}


def _wanted(role: str | None, operation: Any) -> bool:
    """Which operations a role is sent to: gateways and Alertmanager only where their secret is a
    credential (elsewhere it is a bad bearer token, covered by the security probes)."""
    schemes = _schemes(operation)
    if role == "gateway":
        return "gatewayToken" in schemes
    if role == "alertmanager":
        return "alertmanagerSecret" in schemes
    return True


@pytest.fixture
def seeded(
    server_factory: Callable[..., LiveServer], users: dict[str, Any], tokens: dict[str, str]
) -> Iterator[Any]:
    """The live server, and one object of every collection created through the API by the admin."""
    from slo.services import service_create, slo_create

    redis_flush(redis_url())
    server = server_factory("proxied", **BEHIND_PROXY)
    service_create(
        actor=users["operator"],
        data={
            "name": "shelf-vision",
            "display_name": "Shelf vision",
            "service_class": "interactive",
            "owner": "vision",
            "tiers": ["edge", "private_cloud", "public_cloud"],
            "labels": {"team": "vision"},
        },
    )
    slo_create(
        actor=users["operator"],
        data={
            "name": "availability",
            "service": "shelf-vision",
            "sli": {"kind": "availability"},
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
        },
    )
    admin = {
        "Authorization": f"Bearer {tokens['admin']}",
        PROTO_HEADER: "https",
        "X-Forwarded-For": "192.0.2.10",
    }

    def post(
        path: str, body: dict[str, Any], as_: dict[str, str] = admin, *, needed: bool = True
    ) -> dict[str, Any]:
        response = requests.post(server.url + path, json=body, headers=as_, timeout=60)
        if not needed and response.status_code not in (200, 201):
            # one object fewer to reach: the cases still run, on generated ids
            print(f"seed {path}: {response.status_code} {response.text[:200]}")
            return {}
        assert response.status_code in (200, 201), (path, response.status_code, response.text[:300])
        return response.json()

    from routing.policy import default_cache_config, default_policy

    policy = post(
        "/api/v1/routing-policies/",
        {"service": "shelf-vision", "document": default_policy("shelf-vision", "interactive", None)},
    )
    cache = post(
        "/api/v1/cache-configs/",
        {"service": "shelf-vision", "document": default_cache_config("shelf-vision")},
    )
    approver = {**admin, "Authorization": f"Bearer {tokens['approver']}"}
    post(f"/api/v1/routing-policies/{policy['id']}/versions/1/approve/", {}, approver)
    post(f"/api/v1/cache-configs/{cache['id']}/versions/1/approve/", {}, approver)
    gateway = post(
        "/api/v1/gateways/",
        {"name": "edge-1", "service": "shelf-vision", "tier": "edge", "region": "eu-west"},
    )
    post(
        "/api/v1/releases/",
        {
            "service": "shelf-vision",
            "reason": "seed",
            "routing_policy_version": 1,
            "waves": [{"percent": 100, "bake_s": 0}],
        },
        needed=False,
    )
    post(
        "/api/v1/models/",
        {
            "service": "shelf-vision",
            "name": "detector",
            "version": "1.0",
            "training_data_snapshot": "s3://data/1",
            "artifact_digest": DIGEST,
        },
        needed=False,
    )
    secret = post("/api/v1/alertmanager/secrets/", {"name": "am"})
    post(
        "/api/v1/notification-channels/",
        {"name": "hook", "kind": "generic_webhook", "url": "https://x.example", "secret": "s" * 24},
        needed=False,
    )
    post("/api/v1/budget-policies/", {"service": "shelf-vision"}, needed=False)
    post(
        "/api/v1/cost-models/",
        {
            "effective_from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "prices": {"request_fee_usd": {"public_cloud": 0.001}, "cache_usd_per_lookup": 0.0001},
        },
        needed=False,
    )
    post(
        "/api/v1/telemetry-sources/",
        {"name": "prom", "url": "http://127.0.0.1:9/", "tier": "edge"},
        needed=False,
    )
    post("/api/v1/reports/generate/", {"service": "shelf-vision", "period": "week"}, needed=False)
    post(
        "/api/v1/report-schedules/",
        {"name": "weekly", "service": "shelf-vision", "period": "week", "recipients": ["sre@example.com"]},
        needed=False,
    )
    post("/api/v1/tokens/", {"name": "seed"}, needed=False)
    credentials = {
        **{role: tokens[role] for role in USER_ROLES},
        "gateway": gateway["token"],
        "alertmanager": secret["secret"],
    }
    yield server, credentials, _existing(server, admin, gateway["id"])


def _existing(server: LiveServer, admin: dict[str, str], gateway_id: int) -> dict[str, dict[str, Any]]:
    """path template -> path parameters naming objects that exist (the first of each collection)."""
    found: dict[str, dict[str, Any]] = {}
    for template in _document["paths"]:
        if "{" not in template:
            continue
        values: dict[str, Any] = {}
        for parameter in ID_PARAMETERS:
            marker = "{" + parameter + "}"
            if marker not in template:
                continue
            if parameter in ("name", "service"):
                values[parameter] = "shelf-vision"
            elif parameter == "version":
                values[parameter] = 1
            elif template.startswith("/api/v1/gateways/"):
                values[parameter] = gateway_id
            else:
                collection = template.split(marker)[0]
                if parameter == "slo_id":
                    collection = "/api/v1/slos/"
                listed = requests.get(server.url + collection, headers=admin, timeout=60)
                body = listed.json() if listed.status_code == 200 else {}
                rows = body.get("results", body) if isinstance(body, dict) else body
                if isinstance(rows, list) and rows and isinstance(rows[0], dict) and "id" in rows[0]:
                    values[parameter] = rows[0]["id"]
        found[template] = values
    return found


def _send(case: Any, server: LiveServer, role: str | None, token: str | None, ip: str) -> None:
    headers = {PROTO_HEADER: "https", "X-Forwarded-For": ip}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = case.call(base_url=server.url, headers=headers, timeout=60, allow_redirects=False)
    except requests.RequestException as exc:  # a dropped connection is as bad as a 5xx
        TALLY.record(str(role), f"{case.method} {case.formatted_path}", 599, None)
        TALLY.server_errors[-1] += f" ({exc.__class__.__name__})"
        return
    failure = None
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (Failure, FailureGroup) as exc:
        failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
        failure = f"{response.status_code} " + "; ".join(
            f"{f.title}: {' '.join(str(f.message).split())[:300]}" for f in failures
        )
    documented = case.operation.definition.raw.get("responses", {})
    if failure is None and 200 <= response.status_code < 300 and str(response.status_code) not in documented:
        failure = f"undocumented success status {response.status_code}; documented {sorted(documented)}"
    label = f"{case.method} {case.formatted_path}"
    TALLY.record(str(role), label, response.status_code, failure)


def _run_operation(
    operation: Any, server: LiveServer, role: str | None, token: str | None, ip: str, existing: dict[str, Any]
) -> None:
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            _send(case, server, role, token, ip)
            if existing and case.path_parameters:
                # the same case again, on objects that exist
                case.path_parameters = {**case.path_parameters, **existing}
                _send(case, server, role, token, ip)

        run()


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES, ids=lambda role: role or "anonymous")
def test_no_operation_answers_5xx_for_any_role(seeded: Any, role: str | None) -> None:
    server, credentials, existing = seeded
    token = credentials.get(role) if role else None
    ip = f"192.0.2.{ROLES.index(role) + 20}"
    before = len(TALLY.server_errors), len(TALLY.check_failures)
    for result in schema.get_all_operations():
        operation = result.ok()
        if _wanted(role, operation):
            _run_operation(operation, server, role, token, ip, existing.get(operation.path, {}))
    print(
        f"\nrole {role or 'anonymous'}: {TALLY.cases[str(role)]} cases, statuses "
        f"{sorted((s, n) for (r, s), n in TALLY.statuses.items() if r == str(role))}"
    )
    server_errors = TALLY.server_errors[before[0] :]
    check_failures = TALLY.check_failures[before[1] :]
    assert not server_errors, f"{len(server_errors)} 5xx answers:\n" + "\n".join(server_errors[:50])
    assert not check_failures, f"{len(check_failures)} answers off the schema:\n" + "\n".join(
        check_failures[:50]
    )
    assert not server.server_errors(), server.server_errors()[:20]


@pytest.mark.slow
@pytest.mark.parametrize("role", ["operator", "admin"])
def test_stateful_links_reach_created_objects(seeded: Any, role: str) -> None:
    """Create, then act on what was created: the links from every create to its object's operations."""
    server, credentials, _ = seeded
    assert LINKS > 20, f"only {LINKS} links"
    headers = {
        PROTO_HEADER: "https",
        "X-Forwarded-For": f"192.0.2.{40 + USER_ROLES.index(role)}",
        "Authorization": f"Bearer {credentials[role]}",
    }
    steps: list[int] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": server.url, "headers": headers, "timeout": 60, "allow_redirects": False}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            steps.append(response.status_code)
            TALLY.record(
                f"stateful-{role}", f"{case.method} {case.formatted_path}", response.status_code, None
            )

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=[not_a_server_error], headers=headers)

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            stateful_step_count=6,
            suppress_health_check=list(HealthCheck),
        )
    )
    print(f"\nstateful {role}: {len(steps)} calls, {sum(200 <= s < 300 for s in steps)} 2xx")
    assert steps and not [s for s in steps if s >= 500]
    assert not server.server_errors(), server.server_errors()[:20]
