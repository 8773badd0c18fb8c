"""The demo release (routing/releases/demo.py): after the README's run command there is a release
for `admin` to approve in the browser, written by someone else."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

SERVICE = "shelf-vision"


@pytest.fixture
def demo(db: Any, tmp_path: Path) -> dict[str, Any]:
    """What `./scripts/run.sh` does before the demo release: the admin user, the demo data (one day
    of history keeps it quick) and the demo gateways that `serve` registers, then the hook."""
    from routing.demo import seed_demo as seed_routing_documents
    from routing.fleet.demo import fleet_demo_seed
    from routing.releases.demo import release_demo_seed
    from slo.demo import seed_demo_catalog
    from slo.demo_history import seed_demo as seed_history

    call_command("ensure_admin", stdout=io.StringIO())
    seed_demo_catalog()
    seed_history(days=1, stdout=io.StringIO())
    seed_routing_documents(days=1, stdout=io.StringIO())
    gateways = fleet_demo_seed(state_dir=tmp_path / "gateways", actor="demo")
    return {"release": release_demo_seed(), "gateways": gateways}


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_leaves_one_release_pending_approval_by_the_demo_operator(demo: dict[str, Any]) -> None:
    from controlplane.roles import APPROVER, OPERATOR, has_role
    from routing.models.releases import Release
    from routing.releases.demo import DEMO_OPERATOR

    release = demo["release"]
    assert Release.objects.count() == 1
    assert release.state == "pending_approval"
    assert release.required_approvals == 1
    assert release.author.username == DEMO_OPERATOR and release.author_name == DEMO_OPERATOR
    assert has_role(release.author, OPERATOR) and not has_role(release.author, APPROVER)
    assert not release.author.has_usable_password()  # nobody logs in as the demo operator
    # every submission gate passed on the demo data: none paused it, none was skipped for missing data
    gates = {g.gate: g.outcome for g in release.gate_results.filter(stage="submission")}
    assert gates == {
        "documents": "pass",
        "error_budget": "pass",
        "paging": "pass",
        "data_quality": "pass",
        "simulation": "pass",
    }
    # a new policy version by the demo operator, to the three demo gateways: one canary, then the rest
    policy = release.routing_policy_version
    assert policy.version == policy.line.current_version and policy.author_name == DEMO_OPERATOR
    assert "demo change" in policy.note
    assert [len(w["gateway_ids"]) for w in release.waves] == [1, 2]
    assert sorted(g for w in release.waves for g in w["gateway_ids"]) == sorted(
        g["id"] for g in demo["gateways"]
    )


def test_it_adds_nothing_when_run_again(demo: dict[str, Any]) -> None:
    from django.contrib.auth.models import User

    from routing.models.documents import RoutingPolicyVersion
    from routing.models.releases import GateResult, Release
    from routing.releases.demo import release_demo_seed
    from slo.models.telemetry import SliFeed

    counts = (
        Release.objects.count(),
        RoutingPolicyVersion.objects.count(),
        User.objects.count(),
        GateResult.objects.count(),
        SliFeed.objects.count(),
    )
    again = release_demo_seed()
    assert again.pk == demo["release"].pk and again.state == "pending_approval"
    assert (
        Release.objects.count(),
        RoutingPolicyVersion.objects.count(),
        User.objects.count(),
        GateResult.objects.count(),
        SliFeed.objects.count(),
    ) == counts


def test_serve_prints_where_the_release_waits(demo: dict[str, Any]) -> None:
    from web.management.commands.serve import Command

    out = io.StringIO()
    Command(stdout=out)._demo_release("127.0.0.1:8131")
    release_id = demo["release"].pk
    assert f"waiting for approval at http://127.0.0.1:8131/releases/{release_id}/" in out.getvalue()


def test_admin_approves_it_from_the_dashboard(demo: dict[str, Any]) -> None:
    from django.contrib.auth.models import User

    release = demo["release"]
    admin = User.objects.get(username="admin")
    page = logged_in(admin).get(f"/releases/{release.pk}/").content.decode()
    assert "Approve</button>" in page
    response = logged_in(admin).post(
        f"/releases/{release.pk}/approve/", {"comment": "looks good"}, follow=True
    )
    assert response.status_code == 200
    assert f"You approved release {release.pk}." in response.content.decode()
    release.refresh_from_db()
    assert release.state == "approved"
    assert list(release.approvals.values_list("approver__username", "decision")) == [("admin", "approve")]


def test_its_author_cannot_approve_it(demo: dict[str, Any]) -> None:
    from django.contrib.auth.models import Group

    release = demo["release"]
    author = release.author
    # an operator is no approver: the endpoint refuses before the service is asked
    assert logged_in(author).post(f"/releases/{release.pk}/approve/", {"comment": "mine"}).status_code == 403
    # made an approver, the service still refuses its own release (four eyes)
    author.groups.add(Group.objects.get_or_create(name="approver")[0])
    response = logged_in(author).post(f"/releases/{release.pk}/approve/", {"comment": "mine"}, follow=True)
    assert "four eyes" in response.content.decode()
    release.refresh_from_db()
    assert release.state == "pending_approval" and not release.approvals.exists()


def test_the_serve_line_says_why_a_release_does_not_wait() -> None:
    from routing.models.releases import Release
    from routing.releases.demo import demo_release_line

    paused = Release(pk=7, state="paused", paused_reason="waiting for a person: data_quality inconclusive")
    assert demo_release_line(paused, base_url="http://127.0.0.1:8000") == (
        "demo release 7 is paused at http://127.0.0.1:8000/releases/7/: waiting for a person: data_quality "
        "inconclusive"
    )
