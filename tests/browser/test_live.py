"""Live pages in Chromium: a figure changes in place after the data changes, without a reload."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_overview_shows_a_new_slo_and_the_new_as_of_without_reloading(
    browse: Any, evaluated: dict[str, Any], make_slo: Any
) -> None:
    session = browse()
    session.login("vera")
    page = session.page
    page.clock.install()  # the 15 s poll is fast-forwarded, not waited for
    page.goto("/")
    count = page.locator("[data-live='slo-count']")
    assert count.inner_text() == "(3)"
    assert page.locator("[data-live='as-of']").get_attribute("aria-live") == "polite"
    first_as_of = page.locator("[data-live='as-of'] time").get_attribute("datetime")
    page.evaluate("window.liveMarker = 'still the same document'")

    make_slo("fresh-availability")  # a new SLO, written while the page is open
    page.clock.fast_forward(1_000)
    assert count.inner_text() == "(3)"  # nothing before the poll is due
    page.clock.fast_forward(15_000)
    page.wait_for_function(
        "document.querySelector(\"[data-live='slo-count']\").textContent === '(4)'", timeout=10_000
    )
    assert page.get_by_role("link", name="fresh-availability", exact=True).is_visible()
    assert page.locator("[data-live='as-of'] time").get_attribute("datetime") != first_as_of
    assert page.evaluate("window.liveMarker") == "still the same document"
    # (the installed clock fakes `performance`, so the surviving marker is the no-reload proof)
    assert page.evaluate("window.dashboardLive.updates") >= 1

    # a hidden tab does not poll; it catches up as soon as it is visible again
    page.evaluate("Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})")
    updates = page.evaluate("window.dashboardLive.updates")
    make_slo("later-availability")
    page.clock.fast_forward(31_000)
    page.wait_for_timeout(500)
    assert page.evaluate("window.dashboardLive.updates") == updates and count.inner_text() == "(4)"
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page.wait_for_function(
        "document.querySelector(\"[data-live='slo-count']\").textContent === '(5)'", timeout=10_000
    )
    assert session.errors == [], session.errors


def test_release_page_follows_the_rollout_and_counts_the_bake_down(browse: Any, pending_release: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from routing.models.releases import Release

    session = browse()
    session.login("vera")
    page = session.page
    page.goto(f"/releases/{pending_release.pk}/")
    page.evaluate("window.liveMarker = 1")
    assert page.locator("[data-bake-wave]").count() == 0
    Release.objects.filter(pk=pending_release.pk).update(
        state="rolling_out",
        current_wave=0,
        wave_phase="baking",
        bake_started_at=timezone.now() - timedelta(seconds=5),
    )
    page.evaluate("window.dashboardLive.refresh()")  # the poll itself is covered on the overview
    page.wait_for_selector("[data-bake-wave='1']", timeout=10_000)
    assert "rolling out" in page.locator("[data-live='state']").inner_text()
    countdown = page.locator("[data-countdown-until]")
    first = countdown.inner_text()
    page.wait_for_function(
        f"document.querySelector('[data-countdown-until]').textContent !== {first!r}", timeout=5_000
    )
    # a canary measurement arrives: its wave's chart is drawn in place
    from routing.releases import gates
    from routing.releases.transitions import store_gate_results
    from tests.dashboard.test_canary_charts import _evidence

    store_gate_results(
        pending_release,
        [gates.GateOutcome("canary", "pass", _evidence(100, 100, 1, 5))],
        stage="canary:0",
        now=timezone.now(),
    )
    page.evaluate("window.dashboardLive.refresh()")
    page.wait_for_selector("[data-chart='chart-canary-1-p95'] .main-svg", timeout=20_000)
    assert page.evaluate("window.liveMarker") == 1
    assert session.errors == [], session.errors
