"""Authoring in Chromium: the forms work from a real browser, and axe finds no WCAG A/AA violation
on them, with and without the service's refusal shown at the fields."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_accessibility import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_an_sre_creates_an_slo_after_fixing_what_the_form_refused(
    browse: Any, users: Any, service: Any
) -> None:
    from slo.models import Slo

    session = browse()
    session.login("otto")
    page = session.page
    page.goto("/")
    page.get_by_role("link", name="New SLO").click()
    page.wait_for_url("**/slos/new/")
    assert axe_violations(page) == []

    page.get_by_label("Service (required)").select_option("shelf-vision")
    page.get_by_label("Name (required)").fill("checkout-latency")
    page.get_by_label("SLI kind (required)").select_option("latency")
    page.get_by_label("Latency threshold (ms)").fill("300")
    page.get_by_label("Objective (%) (required)").fill("100")  # an objective must be below 100
    page.get_by_role("button", name="Create SLO").click()
    error = page.locator("#f-objective-error")
    error.wait_for()
    assert "less than 100" in error.inner_text()
    assert page.get_by_label("Objective (%) (required)").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Name (required)").input_value() == "checkout-latency"  # nothing typed is lost
    assert not Slo.objects.exists()
    assert axe_violations(page) == []  # the refused form too
    session.screenshot("authoring-slo-refused")

    page.get_by_label("Objective (%) (required)").fill("99.5")
    page.get_by_role("button", name="Create SLO").click()
    page.wait_for_url("**/slos/*/")
    slo = Slo.objects.get(name="checkout-latency")
    assert page.url.endswith(f"/slos/{slo.pk}/")
    assert "created (version 1)" in page.locator(".messages").inner_text()

    page.get_by_role("link", name="Edit SLO").click()
    page.wait_for_url(f"**/slos/{slo.pk}/edit/")
    assert axe_violations(page) == []
    page.get_by_label("Objective (%) (required)").fill("99.9")
    page.get_by_role("button", name="Save new version").click()
    page.wait_for_url(f"**/slos/{slo.pk}/")
    slo.refresh_from_db()
    assert slo.version == 2 and slo.objective == 99.9
    assert session.errors == [], session.errors


def test_a_new_sre_writes_an_slo_and_a_policy_version_releases_it_and_watches_it_roll_out(
    browse: Any, users: Any, service: Any, documents: dict[str, Any], pending_release: Any
) -> None:
    """The done-when journey of issue 19, in Chromium. pending_release gives two gateways running
    policy v1 with an hour of good telemetry and recorded request contexts; it is rejected first so
    they are free. The Celery beat's work (budget evaluation, the release tick) and the gateways'
    heartbeats are driven from the test while the page stays open."""
    from datetime import timedelta

    from django.utils import timezone

    from routing.fleet.services import heartbeat_record
    from routing.models.fleet import Gateway
    from routing.models.releases import Release
    from routing.releases.canary_analysis import ANALYSIS_LAG_MINUTES
    from routing.releases.lifecycle import release_reject
    from routing.releases.rollout import release_tick
    from slo.budget.evaluation import slo_evaluate_all
    from slo.budget.feed import budget_sync
    from slo.models import Slo
    from slo.telemetry.ingest import telemetry_batch_ingest
    from tests.dashboard.conftest import telemetry_minute

    release_reject(actor=users["approver"], release_id=pending_release.pk, comment="make room")
    line_id = documents["policy_v2"].line_id
    sre, approver = browse(), browse()
    sre.login("otto")
    approver.login("anna")
    page = sre.page

    # 1. an SLO, through the form
    page.goto("/slos/new/")
    page.get_by_label("Service (required)").select_option("shelf-vision")
    page.get_by_label("Name (required)").fill("journey-availability")
    page.get_by_label("SLI kind (required)").select_option("availability")
    page.get_by_label("Objective (%) (required)").fill("99")
    page.get_by_role("button", name="Create SLO").click()
    page.wait_for_url("**/slos/*/")
    slo = Slo.objects.get(name="journey-availability")
    # the gateways go on pushing a minute of telemetry; the beat syncs the budget and evaluates
    minute = (timezone.now() - timedelta(minutes=1)).replace(second=0, microsecond=0)
    for gateway in Gateway.objects.filter(name__startswith="rel-edge-"):
        telemetry_batch_ingest(
            source=f"gateway:{gateway.pk}",
            payload={
                "contract_version": 1,
                "gateway": gateway.name,
                "minutes": [
                    {"minute": minute.strftime("%Y-%m-%dT%H:%M:%SZ"), "counters": telemetry_minute(0)}
                ],
            },
            now=timezone.now(),
        )
    budget_sync(now=timezone.now(), minutes=180)
    slo_evaluate_all(now=timezone.now())

    # 2. a policy version, through the editor: validate, diff, simulate, save
    page.goto(f"/policies/routing-policies/{line_id}/")
    page.get_by_role("link", name="Write a new version (from v2)").click()
    editor = page.get_by_label("Document (YAML or JSON)")
    editor.fill(
        editor.input_value().replace("v2: same routes, new description", "v3: written in the browser")
    )
    page.get_by_role("button", name="Validate").click()
    page.locator("[data-check='valid']").wait_for()
    page.get_by_role("button", name="Diff against v2").click()
    page.locator("[data-diff-count='1']").wait_for()
    page.get_by_role("button", name="Simulate").click()
    page.locator("[data-simulation]").wait_for()
    assert axe_violations(page) == []  # the editor with all three answers
    sre.screenshot("authoring-policy-editor")
    page.get_by_label("Change note").fill("new description")
    page.get_by_role("button", name="Save as v3").click()
    page.wait_for_url(f"**/policies/routing-policies/{line_id}/?v=3")

    # 3. another person approves the version (four eyes)
    approver.page.goto(f"/policies/routing-policies/{line_id}/")
    approver.page.get_by_role("button", name="Approve v3").click()
    approver.page.wait_for_url("**/?v=3")
    assert "You approved routing policy v3" in approver.page.locator(".messages").inner_text()

    # 4. a release: preview of waves and gates, a draft, submitted
    page.goto(f"/policies/routing-policies/{line_id}/")
    page.get_by_role("link", name="Release v3").click()
    page.wait_for_url("**/releases/new/**")
    for i, (percent, bake) in enumerate((("50", "60"), ("100", "60"), ("", "")), start=1):
        page.get_by_label(f"Wave {i}: cumulative share (%)").fill(percent)
        page.get_by_label(f"Wave {i}: bake (s)").fill(bake)
    page.get_by_role("button", name="Preview waves and gates").click()
    page.locator("[data-preview-gateways='2']").wait_for()
    waves = page.locator("[data-preview-waves] tbody tr")
    assert waves.count() == 2 and "1 (1 so far)" in waves.nth(0).inner_text()
    outcomes = page.locator("[data-preview-gates] tbody tr[data-gate]")
    assert outcomes.count() == 5
    assert page.locator("[data-gate='simulation'] strong").first.inner_text() == "pass"
    assert axe_violations(page) == []
    sre.screenshot("authoring-release-preview")
    page.get_by_role("button", name="Create draft release").click()
    page.wait_for_url("**/releases/*/")
    release = Release.objects.exclude(pk=pending_release.pk).get()
    assert release.routing_policy_version.version == 3 and release.state == "draft"
    page.get_by_role("button", name="Submit release").click()
    page.wait_for_url(f"**/releases/{release.pk}/")
    release.refresh_from_db()
    assert release.state == "pending_approval", (release.state, release.paused_reason)

    approver.page.goto(f"/releases/{release.pk}/")
    approver.page.get_by_label("Comment (required)").fill("looks right")
    approver.page.get_by_role("button", name="Approve").click()
    approver.page.wait_for_url(f"**/releases/{release.pk}/")
    release.refresh_from_db()
    assert release.state == "approved"

    # 5. the SRE keeps the release page open; the rollout moves and the page follows it, polling
    page.clock.install()
    page.goto(f"/releases/{release.pk}/")
    page.evaluate("window.liveMarker = 'same document'")
    state = page.locator("[data-live='state']")
    assert "approved" in state.inner_text().lower()

    def poll() -> None:
        page.clock.fast_forward(15_000)

    release_tick(now=timezone.now())  # wave 1 starts: its gateway gets the bundle
    release.refresh_from_db()
    assert release.state == "rolling_out" and release.wave_phase == "delivering"
    poll()
    page.wait_for_function(
        "document.querySelector(\"[data-live='state']\").textContent.includes('rolling out')", timeout=10_000
    )
    first_wave = page.locator("[data-live='waves'] tbody tr").nth(0)
    assert "1 / 1" in first_wave.inner_text() and "delivering" in first_wave.inner_text()

    target = release.targets.get(wave=0)
    heartbeat_record(gateway_id=target.gateway_id, data={"applied_revision": target.release_revision})
    release_tick(now=timezone.now())  # acknowledged: wave 1 bakes
    poll()
    page.locator("[data-bake-wave='1']").wait_for(timeout=10_000)
    assert "baking" in page.locator("[data-live='waves'] tbody tr").nth(0).inner_text()
    assert page.locator("[data-chart^='chart-canary-1']").count() == 0

    # the gateways push the bake's first minutes; the next tick measures canary against baseline
    release.refresh_from_db()
    start = release.bake_started_at.replace(second=0, microsecond=0)
    pushed = [start + timedelta(minutes=i) for i in range(3)]
    for gateway in Gateway.objects.filter(name__startswith="rel-edge-"):
        telemetry_batch_ingest(
            source=f"gateway:{gateway.pk}",
            payload={
                "contract_version": 1,
                "gateway": gateway.name,
                "minutes": [
                    {"minute": m.strftime("%Y-%m-%dT%H:%M:%SZ"), "counters": telemetry_minute(0)}
                    for m in pushed
                ],
            },
            now=pushed[-1] + timedelta(minutes=1),
        )
    later = pushed[-1] + timedelta(minutes=1 + ANALYSIS_LAG_MINUTES)
    budget_sync(now=later, minutes=180)  # the beat keeps the statuses fresh meanwhile
    slo_evaluate_all(now=later)
    release_tick(now=later)
    assert release.gate_results.filter(gate="canary", stage="canary:0").exists()
    poll()
    page.locator("[data-chart='chart-canary-1-p95'] .main-svg").first.wait_for(timeout=20_000)
    assert page.evaluate("window.liveMarker") == "same document"  # never reloaded
    assert page.evaluate("window.dashboardLive.updates") >= 2
    sre.screenshot("authoring-release-rolling-out")

    # 6. the SRE rolls it back; the SLO's charts mark it
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Rollback reason (required)").fill("journey check")
    page.get_by_role("button", name="Roll back").click()
    page.wait_for_url(f"**/releases/{release.pk}/")
    page.goto(f"/slos/{slo.pk}/")
    markers = page.locator(".chart-markers li", has_text="rollback")
    assert markers.count() >= 1 and "journey check" in (markers.first.text_content() or "")
    assert sre.errors == [] and approver.errors == [], (sre.errors, approver.errors)
