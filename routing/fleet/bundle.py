"""The config bundle a gateway runs, its ETag and its validation (pure: no Django).

    {"revision": 7, "service": "shelf-vision", "routing_policy": {...}, "cache_config": {...},
     "model_version": "v12" | null}

Validation is all-or-nothing: a bundle is applied only when the policy and the cache config both
validate without errors (warnings do not block). The control plane and the reference gateway run
the same checks; a gateway may add its own (e.g. a route it has no backend for).
"""

from __future__ import annotations

import json
from typing import Any

from routing.policy import validate_cache_config, validate_policy
from slo.spec import Problem

BUNDLE_KEYS = ("revision", "service", "routing_policy", "cache_config", "model_version")


def bundle_build(
    *,
    revision: int,
    service: str,
    routing_policy: dict[str, Any],
    cache_config: dict[str, Any],
    model_version: str | None = None,
) -> dict[str, Any]:
    return {
        "revision": revision,
        "service": service,
        "routing_policy": routing_policy,
        "cache_config": cache_config,
        "model_version": model_version,
    }


def bundle_etag(revision: int | None) -> str:
    """The strong ETag of a revision: `"rev-7"`. Revisions are immutable, so the number is enough."""
    return f'"rev-{revision}"'


def etag_revisions(header: str | None) -> set[int]:
    """Revisions named by an If-None-Match header (`"rev-3", W/"rev-4"`); `*` is not supported."""
    out: set[int] = set()
    for part in (header or "").split(","):
        tag = part.strip().removeprefix("W/").strip('"')
        if tag.startswith("rev-") and tag[4:].isdigit():
            out.add(int(tag[4:]))
    return out


def bundle_bytes(bundle: dict[str, Any]) -> bytes:
    """Canonical JSON: what is signed and sent, byte for byte."""
    return json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def bundle_problems(
    bundle: Any,
    *,
    latency_slo_ms: float | None = None,
    service_class: str | None = None,
    multi_tenant: bool = False,
    expected_service: str | None = None,
) -> list[Problem]:
    """Every problem of a bundle, errors and warnings, with paths like `routing_policy.rules[0]`."""
    if not isinstance(bundle, dict):
        return [Problem("", "the bundle must be a JSON object")]
    problems: list[Problem] = []
    unknown = sorted(set(bundle) - set(BUNDLE_KEYS))
    if unknown:
        problems.append(Problem("", f"unknown keys: {', '.join(unknown)}"))
    revision = bundle.get("revision")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        problems.append(Problem("revision", "must be a positive integer"))
    service = bundle.get("service")
    if not isinstance(service, str) or not service:
        problems.append(Problem("service", "required"))
    elif expected_service is not None and service != expected_service:
        problems.append(Problem("service", f"this gateway serves {expected_service!r}, not {service!r}"))
    model_version = bundle.get("model_version")
    if model_version is not None and not isinstance(model_version, str):
        problems.append(Problem("model_version", "must be a string or null"))
    for key, check in (
        (
            "routing_policy",
            lambda doc: validate_policy(doc, latency_slo_ms=latency_slo_ms, service_class=service_class),
        ),
        ("cache_config", lambda doc: validate_cache_config(doc, multi_tenant=multi_tenant)),
    ):
        doc = bundle.get(key)
        if not isinstance(doc, dict):
            problems.append(Problem(key, "required (an object)"))
            continue
        for problem in check(doc):
            path = f"{key}.{problem.path}" if problem.path else key
            problems.append(Problem(path, problem.message, problem.severity))
        if isinstance(service, str) and doc.get("service") not in (None, service):
            problems.append(
                Problem(f"{key}.service", f"names {doc.get('service')!r}, the bundle serves {service!r}")
            )
    return problems


def errors_only(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
