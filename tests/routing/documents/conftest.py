"""Fixtures for routing documents: the shared `service` with a 150 ms edge latency SLO, and
default documents that validate cleanly against it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from routing.policy import default_cache_config, default_policy


@pytest.fixture
def latency_slo(service: Any, users: dict[str, Any], slo_doc: dict[str, Any]) -> Any:
    from slo.services import slo_create

    return slo_create(actor=users["operator"], data=slo_doc)


@pytest.fixture
def policy_doc() -> dict[str, Any]:
    return default_policy("shelf-vision", "interactive", 150)


@pytest.fixture
def cache_doc() -> dict[str, Any]:
    return default_cache_config("shelf-vision")


@pytest.fixture
def policy(api_for: Any, latency_slo: Any, policy_doc: dict[str, Any]) -> dict[str, Any]:
    """A stored routing policy (version 1, written by the operator)."""
    response = api_for("operator").post(
        "/api/v1/routing-policies/", {"document": policy_doc, "note": "v1"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def cache(api_for: Any, latency_slo: Any, cache_doc: dict[str, Any]) -> dict[str, Any]:
    response = api_for("operator").post("/api/v1/cache-configs/", {"document": cache_doc}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def edited(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.update(changes)
    return out
