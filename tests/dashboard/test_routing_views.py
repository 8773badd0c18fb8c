"""Routing pages (routing/views.py): policies and caches, fleet, releases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_it_lists_policies_and_cache_configs(
    page_for: Any, documents: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = page_for("viewer")
    with django_assert_max_num_queries(14):
        response = client.get("/policies/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Routing policies" in body and "Cache configs" in body
    assert f"/policies/routing-policies/{documents['policy_v1'].line_id}/" in body
    assert f"/policies/cache-configs/{documents['cache_v1'].line_id}/" in body


def test_it_shows_versions_diff_and_validation(page_for: Any, documents: dict[str, Any]) -> None:
    line_id = documents["policy_v1"].line_id
    response = page_for("viewer").get(f"/policies/routing-policies/{line_id}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "v1 → v2: 1 change" in body
    assert "description" in body
    assert [v.version for v in response.context["versions"]] == [2, 1]
    same = page_for("viewer").get(f"/policies/routing-policies/{line_id}/?from=2&to=2")
    assert same.context["diff"] is None
    missing = page_for("viewer").get(f"/policies/routing-policies/{line_id}/?from=1&to=99")
    assert "does not exist" in missing.content.decode()


def test_it_explains_a_decision_for_a_request_context(page_for: Any, documents: dict[str, Any]) -> None:
    line_id = documents["policy_v1"].line_id
    response = page_for("viewer").get(
        f"/policies/routing-policies/{line_id}/",
        {"explain": "1", "explain_version": "1", "context": '{"confidence": 0.3, "payload_kb": 50}'},
    )
    assert response.status_code == 200
    explain = response.context["explain"]
    assert explain["version"] == 1 and explain["routes"]
    assert " → ".join(explain["routes"]) in response.content.decode()


@pytest.mark.parametrize(
    "context, message",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be an object"),
        ('{"confidence": "high"}', "confidence"),
    ],
)
def test_it_shows_explain_errors_on_the_page(
    page_for: Any, documents: dict[str, Any], context: str, message: str
) -> None:
    line_id = documents["policy_v1"].line_id
    response = page_for("viewer").get(
        f"/policies/routing-policies/{line_id}/", {"explain": "1", "context": context}
    )
    assert response.status_code == 200
    assert any(message in f"{p['path']} {p['message']}" for p in response.context["explain_errors"])


def test_it_simulates_a_candidate_against_the_active_version(
    page_for: Any, documents: dict[str, Any]
) -> None:
    line_id = documents["policy_v1"].line_id
    response = page_for("viewer").get(
        f"/policies/routing-policies/{line_id}/",
        {
            "simulate": "1",
            "candidate": "2",
            "baseline": "1",
            "n": "200",
            "seed": "1",
            "traffic": "distribution",
            "distribution": '{"confidence": {"uniform": [0, 1]}}',
        },
    )
    assert response.status_code == 200, response.context.get("simulate_errors")
    assert response.context["simulate_errors"] == []
    simulation = response.context["simulation"]
    assert simulation["candidate_version"] == 2 and simulation["baseline_version"] == 1
    labels = [row["label"] for row in response.context["simulation_rows"]]
    assert "p95 latency (ms)" in labels and any(label.startswith("route mix") for label in labels)
    assert simulation["contexts"]["source"] == "generated"
    assert "a what-if, not recorded traffic" in response.content.decode()


def test_it_simulates_recorded_traffic_by_default_and_says_when_there_is_none(
    page_for: Any, documents: dict[str, Any]
) -> None:
    line_id = documents["policy_v1"].line_id
    response = page_for("viewer").get(
        f"/policies/routing-policies/{line_id}/", {"simulate": "1", "candidate": "2", "baseline": "1"}
    )
    assert response.status_code == 200
    assert response.context["simulation"] is None  # no prediction from contexts nobody saw
    [problem] = response.context["simulate_errors"]
    assert problem["path"] == "recorded" and "0 request contexts recorded" in problem["message"]


def test_it_reports_a_simulation_without_baseline(page_for: Any, documents: dict[str, Any]) -> None:
    # nothing runs and nothing is approved: the simulator needs a baseline and says so
    line_id = documents["policy_v1"].line_id
    response = page_for("viewer").get(f"/policies/routing-policies/{line_id}/", {"simulate": "1", "n": "50"})
    assert response.status_code == 200
    assert any(p["path"] == "baseline_version" for p in response.context["simulate_errors"])


def test_it_explains_a_cache_key(page_for: Any, documents: dict[str, Any]) -> None:
    line_id = documents["cache_v1"].line_id
    response = page_for("viewer").get(
        f"/policies/cache-configs/{line_id}/",
        {"explain_key": "1", "request": '{"model_version": "m1", "input_sha256": "abc"}'},
    )
    assert response.status_code == 200
    assert response.context["key_errors"] == []
    assert response.context["key_result"]["keys"]
    bad_layer = page_for("viewer").get(
        f"/policies/cache-configs/{line_id}/", {"explain_key": "1", "layer": "nope", "request": "{}"}
    )
    assert any(p["path"] == "layer" for p in bad_layer.context["key_errors"])


def test_it_answers_404_for_unknown_documents(page_for: Any, documents: dict[str, Any]) -> None:
    client = page_for("viewer")
    assert client.get("/policies/routing-policies/999999/").status_code == 404
    assert client.get("/policies/bogus-kind/1/").status_code == 404


def test_it_shows_the_fleet_by_tier_and_region(
    page_for: Any, gateways: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = page_for("viewer")
    # (three of them: the applied revisions' bundles and the versions of their two documents)
    with django_assert_max_num_queries(15):
        response = client.get("/fleet/")
    assert response.status_code == 200
    health = {row["gateway"].name: row["health"] for row in response.context["rows"]}
    assert health == {
        "edge-ok": "healthy",
        "edge-drift": "drifted",
        "edge-nack": "nacked",
        "cloud-new": "pending",
    }
    body = response.content.decode()
    assert "unknown route" in body  # the NACK error
    assert response.context["summary"]["total"] == 4


def test_the_fleet_shows_rotations_in_their_grace_window_and_whether_the_old_token_is_used(
    page_for: Any, users: dict[str, Any], gateways: dict[str, Any], now: Any
) -> None:
    from routing.fleet.services import gateway_rotate
    from routing.models.fleet import Gateway

    gateway_rotate(actor=users["operator"], gateway_id=gateways["edge-ok"].pk, grace_seconds=3600, now=now)
    gateway_rotate(actor=users["operator"], gateway_id=gateways["edge-drift"].pk, grace_seconds=3600, now=now)
    Gateway.objects.filter(pk=gateways["edge-drift"].pk).update(previous_token_last_used_at=now)
    gateway_rotate(actor=users["operator"], gateway_id=gateways["edge-nack"].pk, grace_seconds=0, now=now)

    rows = {r["gateway"].name: r["rotation"] for r in page_for("viewer").get("/fleet/").context["rows"]}
    assert rows["edge-ok"]["switched"] and rows["edge-ok"]["old_token"] == "old token not used since"
    assert not rows["edge-drift"]["switched"] and rows["edge-drift"]["old_token"].startswith(
        "old token used "
    )
    assert rows["edge-ok"]["until"] == now + timedelta(hours=1)
    assert rows["edge-nack"] is None and rows["cloud-new"] is None  # no window: nothing to watch


@pytest.mark.parametrize("health", ["healthy", "drifted", "nacked", "pending", "stale"])
def test_it_filters_the_fleet_by_health_like_the_health_function(
    page_for: Any, gateways: dict[str, Any], health: str
) -> None:
    response = page_for("viewer").get("/fleet/", {"health": health})
    assert {row["health"] for row in response.context["rows"]} <= {health}
    expected = {"healthy": 1, "drifted": 1, "nacked": 1, "pending": 1, "stale": 0}[health]
    assert len(response.context["rows"]) == expected


def test_it_counts_silent_gateways_as_stale(page_for: Any, gateways: dict[str, Any], now: Any) -> None:
    from routing.models.fleet import Gateway
    from web.views.fleet import health_q

    later = now + timedelta(minutes=5)
    assert set(Gateway.objects.filter(health_q("stale", now=later)).values_list("name", flat=True)) == {
        "edge-ok",
        "edge-drift",
        "edge-nack",
    }


def test_it_lists_releases_and_filters_them(
    page_for: Any, pending_release: Any, django_assert_max_num_queries: Any
) -> None:
    client = page_for("viewer")
    with django_assert_max_num_queries(10):
        response = client.get("/releases/")
    assert response.status_code == 200
    assert pending_release.state == "pending_approval"
    assert "Describe v2" in response.content.decode()
    assert client.get("/releases/", {"state": "completed"}).context["page"].paginator.count == 0
    assert client.get("/releases/", {"state": "open"}).context["page"].paginator.count == 1


def test_it_shows_gate_evidence_and_waves(page_for: Any, pending_release: Any) -> None:
    response = page_for("viewer").get(f"/releases/{pending_release.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Gate evidence" in body and len(response.context["gates"]) >= 1
    assert len(response.context["waves"]) == 2
    # a viewer sees no buttons
    assert "Approve</button>" not in body and "Roll back</button>" not in body


def test_it_shows_approve_only_to_approvers_who_did_not_write_it(
    page_for: Any, users: dict[str, Any], pending_release: Any
) -> None:
    url = f"/releases/{pending_release.pk}/"
    assert "Approve</button>" in page_for("approver").get(url).content.decode()
    assert "Reject</button>" in page_for("approver").get(url).content.decode()
    assert "Approve</button>" not in page_for("operator").get(url).content.decode()
    # an admin who authored a release may not approve it either
    pending_release.author = users["admin"]
    pending_release.save(update_fields=["author"])
    body = page_for("admin").get(url).content.decode()
    assert "Approve</button>" not in body and "someone else must approve it" in body


def test_it_approves_through_the_release_service(page_for: Any, pending_release: Any) -> None:
    client = page_for("approver")
    response = client.post(f"/releases/{pending_release.pk}/approve/", {"comment": "looks good"}, follow=True)
    assert response.status_code == 200
    pending_release.refresh_from_db()
    assert pending_release.state == "approved"
    assert "You approved release" in response.content.decode()
    # the button is gone once decided
    assert "Approve</button>" not in response.content.decode()


def test_it_shows_the_service_refusal_when_the_author_posts_anyway(
    page_for: Any, users: dict[str, Any], pending_release: Any
) -> None:
    from django.contrib.auth.models import Group

    users["operator"].groups.add(Group.objects.get_or_create(name="approver")[0])
    response = page_for("operator").post(
        f"/releases/{pending_release.pk}/approve/", {"comment": "mine"}, follow=True
    )
    pending_release.refresh_from_db()
    assert pending_release.state == "pending_approval"
    assert "four eyes" in response.content.decode()


def test_it_rejects_with_a_comment(page_for: Any, pending_release: Any) -> None:
    response = page_for("approver").post(
        f"/releases/{pending_release.pk}/reject/", {"comment": "not now"}, follow=True
    )
    pending_release.refresh_from_db()
    assert pending_release.state == "rejected"
    assert "not now" in response.content.decode()


def test_it_needs_a_comment_to_approve(page_for: Any, pending_release: Any) -> None:
    response = page_for("approver").post(
        f"/releases/{pending_release.pk}/approve/", {"comment": ""}, follow=True
    )
    pending_release.refresh_from_db()
    assert pending_release.state == "pending_approval"
    assert 'class="msg-error"' in response.content.decode()


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("outsider", 403)])
def test_it_refuses_approval_posts_from_non_approvers(
    page_for: Any, pending_release: Any, role: str, status: int
) -> None:
    assert (
        page_for(role).post(f"/releases/{pending_release.pk}/approve/", {"comment": "x"}).status_code
        == status
    )


def test_it_refuses_get_on_actions_and_posts_without_csrf(
    page_for: Any, users: dict[str, Any], pending_release: Any
) -> None:
    from django.test import Client

    assert page_for("approver").get(f"/releases/{pending_release.pk}/approve/").status_code == 405
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["approver"])
    assert client.post(f"/releases/{pending_release.pk}/approve/", {"comment": "x"}).status_code == 403
    pending_release.refresh_from_db()
    assert pending_release.state == "pending_approval"


def test_it_refuses_a_rollback_of_a_release_that_never_ran(page_for: Any, pending_release: Any) -> None:
    # no rollback button while pending, and the service refuses a forced POST with a message
    body = page_for("operator").get(f"/releases/{pending_release.pk}/").content.decode()
    assert "Roll back</button>" not in body
    response = page_for("operator").post(
        f"/releases/{pending_release.pk}/rollback/", {"comment": "why"}, follow=True
    )
    pending_release.refresh_from_db()
    assert pending_release.state == "pending_approval"
    assert 'class="msg-error"' in response.content.decode()


def test_it_shows_releases_in_progress_on_the_overview(page_for: Any, pending_release: Any) -> None:
    body = page_for("viewer").get("/").content.decode()
    assert f"/releases/{pending_release.pk}/" in body and "Describe v2" in body


def test_a_paused_release_can_be_resumed_from_its_page_by_an_approver_not_its_author(
    page_for: Any, paused_release: Any
) -> None:
    url = f"/releases/{paused_release.pk}/"
    author_page = page_for("operator").get(url).content.decode()
    assert "Resume</button>" not in author_page and "another approver must decide" in author_page
    assert "data_quality" in author_page  # the reason it waits is on the page
    assert "Resume</button>" not in page_for("viewer").get(url).content.decode()

    approver_page = page_for("approver").get(url).content.decode()
    assert "Resume</button>" in approver_page
    response = page_for("approver").post(
        f"{url}resume/", {"comment": "new edge site, no traffic yet"}, follow=True
    )
    paused_release.refresh_from_db()
    assert paused_release.state == "pending_approval"
    assert "submission" in paused_release.overrides
    assert "You resumed release" in response.content.decode()
    last = paused_release.transitions.order_by("-at", "-id").first()
    assert (last.event, last.reason) == ("resume", "new edge site, no traffic yet")


def test_resuming_needs_a_reason_and_the_approver_role(page_for: Any, paused_release: Any) -> None:
    url = f"/releases/{paused_release.pk}/resume/"
    response = page_for("approver").post(url, {"comment": ""}, follow=True)
    paused_release.refresh_from_db()
    assert paused_release.state == "paused" and 'class="msg-error"' in response.content.decode()
    assert page_for("viewer").post(url, {"comment": "x"}).status_code == 403
    # the author holding the approver role too is still refused by the service (four eyes)
    from django.contrib.auth.models import Group

    paused_release.author.groups.add(Group.objects.get_or_create(name="approver")[0])
    response = page_for("operator").post(url, {"comment": "mine"}, follow=True)
    paused_release.refresh_from_db()
    assert paused_release.state == "paused" and "four eyes" in response.content.decode()


def test_an_operator_cancels_a_release_no_gateway_runs(page_for: Any, pending_release: Any) -> None:
    url = f"/releases/{pending_release.pk}/"
    assert "Cancel release</button>" not in page_for("viewer").get(url).content.decode()
    assert "Cancel release</button>" in page_for("operator").get(url).content.decode()
    assert page_for("viewer").post(f"{url}cancel/", {"comment": "x"}).status_code == 403
    response = page_for("operator").post(f"{url}cancel/", {"comment": "wrong policy version"}, follow=True)
    pending_release.refresh_from_db()
    assert pending_release.state == "cancelled"
    assert "You cancelled release" in response.content.decode()
    assert "Cancel release</button>" not in response.content.decode()


def test_fleet_revisions_link_to_the_document_versions_they_carry(
    page_for: Any, pending_release: Any, gateways: dict[str, Any], documents: dict[str, Any]
) -> None:
    """pending_release's gateways run policy v1 and cache v1 (revision 1); the `gateways` fixture's
    run a 150 ms default policy that no stored version has (no link, rather than a wrong one) and
    the default cache config, which is cache v1."""
    import re

    from routing.fleet.selectors import applied_document_versions
    from routing.models.fleet import Gateway

    policy_line, cache_line = documents["policy_v1"].line_id, documents["cache_v1"].line_id
    page = page_for("viewer").get("/fleet/").content.decode()
    rows = {
        name: row
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        for name in re.findall(r"<td>(?:<a [^>]*>)?([a-z0-9-]+)(?:</a>)?</td>", row)[:1]
    }
    for name in ("rel-edge-0", "rel-edge-1"):
        assert f'href="/policies/routing-policies/{policy_line}/?v=1"' in rows[name], rows[name]
        assert f'href="/policies/cache-configs/{cache_line}/?v=1"' in rows[name]
    assert "/policies/routing-policies/" not in rows["edge-ok"]
    assert f'href="/policies/cache-configs/{cache_line}/?v=1"' in rows["edge-ok"]
    chosen = list(Gateway.objects.filter(name__in=["rel-edge-0", "edge-ok", "cloud-new"]).order_by("name"))
    found = applied_document_versions(gateways=chosen)
    assert [(v["kind"], v["version"]) for v in found[chosen[2].pk]] == [
        ("routing_policy", 1),
        ("cache_config", 1),
    ]
    assert found[chosen[0].pk] == []  # never applied anything
    assert [(v["kind"], v["version"]) for v in found[chosen[1].pk]] == [("cache_config", 1)]
