"""The routing policy / cache config editor: validate, diff and simulate before saving, with the
API's functions; saving and approving versions by role."""

from __future__ import annotations

import copy
import html as html_lib
import json
import re
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.django_db


def edit_url(version: Any, kind: str = "routing-policies") -> str:
    return f"/policies/{kind}/{version.line_id}/edit/"


def text(page: Any) -> str:
    return html_lib.unescape(page.content.decode())


def document_errors(page: Any) -> list[str]:
    match = re.search(r'<ul id="f-document-error"[^>]*>(.*?)</ul>', page.content.decode(), re.S)
    return (
        [html_lib.unescape(m) for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)] if match else []
    )


def counts() -> tuple[int, int]:
    from controlplane.models.audit import AuditEvent
    from routing.models.documents import RoutingPolicyVersion

    return RoutingPolicyVersion.objects.count(), AuditEvent.objects.count()


def test_the_editor_is_for_operators_and_starts_from_the_newest_version(
    page_for: Any, documents: dict[str, Any]
) -> None:
    v2 = documents["policy_v2"]
    for role in ("viewer", "approver", "outsider"):
        assert page_for(role).get(edit_url(v2)).status_code == 403, role
        assert page_for(role).post(edit_url(v2), {"action": "save", "document": "{}"}).status_code == 403
    page = page_for("operator").get(edit_url(v2))
    assert page.status_code == 200
    shown = re.search(r'<textarea id="f-document"[^>]*>(.*?)</textarea>', page.content.decode(), re.S).group(
        1
    )
    assert yaml.safe_load(html_lib.unescape(shown)) == v2.document
    assert 'name="parent_version" value="2"' in page.content.decode()
    detail = f"/policies/routing-policies/{v2.line_id}/"
    assert f'href="{edit_url(v2)}"' in page_for("operator").get(detail).content.decode()
    assert f'href="{edit_url(v2)}"' not in page_for("viewer").get(detail).content.decode()
    # the cache config editor too, without Simulate
    cache = page_for("operator").get(edit_url(documents["cache_v1"], "cache-configs"))
    assert cache.status_code == 200 and 'value="simulate"' not in cache.content.decode()


def test_validate_and_diff_store_nothing(page_for: Any, documents: dict[str, Any]) -> None:
    v2 = documents["policy_v2"]
    edited = copy.deepcopy(v2.document)
    edited["description"] = "v3"
    edited["rules"][0]["chain"][0]["route"] = "gpu"
    before = counts()
    page = page_for("operator").post(
        edit_url(v2), {"action": "validate", "document": json.dumps(edited), "parent_version": "2"}
    )
    assert page.status_code == 200 and 'data-check="invalid"' in page.content.decode()
    assert "rules[0].chain[0].route" in text(page)

    ok = copy.deepcopy(v2.document)
    ok["description"] = "v3: new words"
    page = page_for("operator").post(
        edit_url(v2), {"action": "diff", "document": yaml.safe_dump(ok), "parent_version": "2"}
    )
    body = text(page)
    assert 'data-check="valid"' in body and 'data-diff-count="1"' in body
    assert "~ description: v2: same routes, new description → v3: new words" in body
    assert counts() == before


def test_unreadable_text_is_refused_at_the_editor_with_where(
    page_for: Any, documents: dict[str, Any]
) -> None:
    v2 = documents["policy_v2"]
    before = counts()
    page = page_for("operator").post(
        edit_url(v2), {"action": "save", "document": "rules: [\n  - name: x\n  bad", "parent_version": "2"}
    )
    assert page.status_code == 200
    errors = document_errors(page)
    assert errors and "line" in " ".join(errors), errors
    assert 'aria-invalid="true"' in page.content.decode()
    assert counts() == before


def test_save_refused_by_validation_shows_every_error_at_the_editor(
    page_for: Any, documents: dict[str, Any]
) -> None:
    v2 = documents["policy_v2"]
    edited = copy.deepcopy(v2.document)
    edited["rules"][0]["chain"][0]["route"] = "gpu"
    before = counts()
    page = page_for("operator").post(
        edit_url(v2), {"action": "save", "document": json.dumps(edited), "parent_version": "2", "note": "x"}
    )
    assert page.status_code == 200
    assert any(e.startswith("rules[0].chain[0].route: ") for e in document_errors(page)), document_errors(
        page
    )
    assert "Nothing was stored" in text(page)
    assert counts() == before


def test_saving_writes_a_draft_version_with_its_audit_event_and_refuses_a_stale_base(
    page_for: Any, documents: dict[str, Any], users: dict[str, Any]
) -> None:
    from controlplane.models.audit import AuditEvent
    from routing.models.documents import RoutingPolicyVersion

    v2 = documents["policy_v2"]
    edited = copy.deepcopy(v2.document)
    edited["description"] = "v3 from the browser"
    response = page_for("operator").post(
        edit_url(v2),
        {"action": "save", "document": yaml.safe_dump(edited), "parent_version": "2", "note": "words"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/policies/routing-policies/{v2.line_id}/?v=3"
    v3 = RoutingPolicyVersion.objects.get(line_id=v2.line_id, version=3)
    assert v3.state == "draft" and v3.document == edited and v3.author_id == users["operator"].pk
    assert v3.note == "words" and v3.parent_version == 2
    assert AuditEvent.objects.filter(action="update", note="words", actor=users["operator"]).count() == 1

    before = counts()
    stale = page_for("operator").post(
        edit_url(v2), {"action": "save", "document": json.dumps(v2.document), "parent_version": "2"}
    )
    assert "current version is 3" in text(stale)
    assert re.search(r'id="f-note"[^>]*aria-invalid="true"', stale.content.decode())
    assert counts() == before


def test_simulate_gives_the_apis_figures_for_the_unsaved_text(
    page_for: Any, pending_release: Any, documents: dict[str, Any]
) -> None:
    """Same document, same traffic: the editor's prediction for the unsaved text equals the API's
    simulate of the stored version with that document (recorded contexts from pending_release)."""
    from routing.documents.simulation import routing_policy_simulate

    v2 = documents["policy_v2"]
    v2.refresh_from_db()
    before = counts()
    page = page_for("operator").post(
        edit_url(v2), {"action": "simulate", "document": json.dumps(v2.document), "parent_version": "2"}
    )
    body = text(page)
    assert "data-simulation" in body, body[-3000:]
    api = routing_policy_simulate(line=v2.line, body={"candidate_version": 2})
    p95 = api["candidate"]["p95_ms"]
    row = re.search(
        r"<td>p95 latency \(ms\)</td><td class=\"num\">([^<]*)</td><td class=\"num\">([^<]*)</td>", body
    )
    assert row and row.group(2) == f"{p95:.1f}", (row and row.groups(), p95)
    assert f"{api['contexts']['n']} requests drawn from" in body
    assert counts() == before


def test_simulate_without_recorded_traffic_says_so(page_for: Any, documents: dict[str, Any]) -> None:
    v2 = documents["policy_v2"]
    page = page_for("operator").post(
        edit_url(v2), {"action": "simulate", "document": json.dumps(v2.document), "parent_version": "2"}
    )
    assert "data-simulation" not in page.content.decode()
    assert "no recorded traffic to simulate: 0 request contexts recorded" in text(page)


def test_approving_a_version_by_role(page_for: Any, documents: dict[str, Any], users: dict[str, Any]) -> None:
    from controlplane.models.audit import AuditEvent

    v2 = documents["policy_v2"]
    url = f"/policies/routing-policies/{v2.line_id}/versions/2/approve/"
    detail = page_for("approver").get(f"/policies/routing-policies/{v2.line_id}/").content.decode()
    assert f'action="{url}"' in detail
    assert (
        f'action="{url}"'
        not in page_for("operator").get(f"/policies/routing-policies/{v2.line_id}/").content.decode()
    )
    for role in ("viewer", "operator"):
        assert page_for(role).post(url).status_code == 403
    assert page_for("approver").get(url).status_code == 405
    v2.refresh_from_db()
    assert v2.state == "draft"
    response = page_for("approver").post(url)
    assert response.status_code == 302
    v2.refresh_from_db()
    assert v2.state == "approved" and v2.approved_by_id == users["approver"].pk
    assert AuditEvent.objects.filter(action="approve", actor=users["approver"]).exists()
    # approved versions offer a release to operators
    page = page_for("operator").get(f"/policies/routing-policies/{v2.line_id}/").content.decode()
    assert "/releases/new/?service=shelf-vision&amp;routing_policy_version=2" in page


def test_the_cache_config_editor_saves_and_refuses_like_the_api(
    page_for: Any, documents: dict[str, Any], api_for: Any
) -> None:
    from routing.models.documents import CacheConfigVersion

    v1 = documents["cache_v1"]
    url = edit_url(v1, "cache-configs")
    bad = copy.deepcopy(v1.document)
    bad["layers"][0]["ttl"] = "soon"
    before = CacheConfigVersion.objects.count()
    page = page_for("operator").post(
        url, {"action": "save", "document": json.dumps(bad), "parent_version": "1"}
    )
    api = api_for("operator").post("/api/v1/cache-configs/validate/", {"document": bad}, format="json").json()
    assert not api["valid"]
    # the same errors, at the same paths, as the API's dry run
    assert document_errors(page) == [f"{p['path']}: {p['message']}" for p in api["errors"]]
    assert CacheConfigVersion.objects.count() == before

    good = copy.deepcopy(v1.document)
    good["layers"][0]["ttl"] = "600s"
    response = page_for("operator").post(
        url, {"action": "save", "document": yaml.safe_dump(good), "parent_version": "1", "note": "longer ttl"}
    )
    assert response.status_code == 302
    v2 = CacheConfigVersion.objects.get(line_id=v1.line_id, version=2)
    assert v2.document["layers"][0]["ttl"] == "600s" and v2.state == "draft" and v2.note == "longer ttl"
