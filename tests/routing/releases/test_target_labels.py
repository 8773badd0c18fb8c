"""Release target label keys are plain names, matched by jsonb containment (never an ORM lookup)."""

from __future__ import annotations

from typing import Any

import pytest

from routing.models.releases import Release
from routing.releases.selectors import resolve_targets

pytestmark = pytest.mark.django_db


def body(documents: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "service": "shelf-vision",
        "reason": "ship v2",
        "routing_policy_version": documents["policy_v2"].version,
        "target": {"labels": labels},
        "waves": [{"percent": 100, "bake_s": 0}],
    }


@pytest.mark.parametrize("key", ["site__isnull", "site__regex", "a__b", "1site", "si te", "", "x" * 64])
def test_a_label_key_that_is_not_a_plain_name_is_a_400(
    api_for: Any, documents: Any, fleet: Any, key: str
) -> None:
    fleet(3)
    response = api_for("operator").post("/api/v1/releases/", body(documents, {key: ".*"}), format="json")
    assert response.status_code == 400
    assert {e["path"] for e in response.json()["errors"]} == {f"target.labels.{key}"}
    assert not Release.objects.exists()


def test_plain_label_keys_select_the_gateways_carrying_them(api_for: Any, documents: Any, fleet: Any) -> None:
    fleet(3)
    response = api_for("operator").post("/api/v1/releases/", body(documents, {"site": "s1"}), format="json")
    assert response.status_code == 201, response.json()
    release = Release.objects.get(pk=response.json()["id"])
    assert [g.name for g in resolve_targets(release=release)] == ["edge-01"]


def test_a_stored_selector_with_a_lookup_in_its_key_matches_nothing(make_release: Any, fleet: Any) -> None:
    """Selectors stored before keys were checked: the key is a key, not an ORM lookup."""
    fleet(3)
    release = make_release(waves=[{"percent": 100, "bake_s": 0}])
    Release.objects.filter(pk=release.pk).update(target_selector={"labels": {"site__regex": ".*"}})
    release.refresh_from_db()
    assert resolve_targets(release=release) == []
