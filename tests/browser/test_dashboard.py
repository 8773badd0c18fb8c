"""The dashboard in a real browser: log in, overview, an SLO chart that renders, approving a
release as an approver and not seeing the button as its author."""

from __future__ import annotations

from typing import Any

import pytest

# serialized_rollback: the live server needs committed data, and the flush after each test must
# not leave later (non-browser) tests without the role groups the migrations created.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_it_logs_in_and_shows_the_overview_and_an_slo_chart(browse: Any, evaluated: dict[str, Any]) -> None:
    for width in (1280, 768):
        session = browse(width)
        session.login("vera")
        page = session.page
        assert page.get_by_role("heading", name="Overview").is_visible()
        assert page.get_by_role("link", name="burning-availability", exact=True).is_visible()
        assert page.locator("span.badge", has_text="paging").first.is_visible()
        # the filter form works from the keyboard-accessible labels
        page.get_by_label("State").select_option("page")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url("**state=page**")
        assert page.locator("table.slo-table tbody tr").count() == 1
        session.screenshot(f"overview-filtered-{width}")
        page.goto("/")
        session.screenshot(f"overview-{width}")

        page.get_by_role("link", name="burning-availability", exact=True).click()
        page.wait_for_selector("[data-chart='chart-burn'] .main-svg", timeout=20_000)
        assert page.locator("[data-chart='chart-sli'] .main-svg").count() >= 1
        assert page.locator("[data-chart='chart-burndown'] .main-svg").count() >= 1
        session.screenshot(f"slo-detail-{width}")
        assert session.errors == [], session.errors


def test_it_lets_an_approver_approve_and_hides_the_button_from_the_author(
    browse: Any, users: dict[str, Any], pending_release: Any
) -> None:
    from django.contrib.auth.models import Group

    # the author is an approver too: four eyes still hides the button from them
    users["operator"].groups.add(Group.objects.get_or_create(name="approver")[0])
    author = browse()
    author.login("otto")
    author.page.goto(f"/releases/{pending_release.pk}/")
    assert author.page.get_by_role("heading", name=f"Release #{pending_release.pk}: Describe v2").is_visible()
    assert author.page.get_by_role("button", name="Approve").count() == 0
    assert author.page.get_by_text("someone else must approve it").is_visible()
    author.screenshot("release-author-1280")

    approver = browse()
    approver.login("anna")
    page = approver.page
    page.goto(f"/releases/{pending_release.pk}/")
    page.get_by_label("Comment (required)").fill("checked the gate evidence")
    approver.screenshot("release-approver-1280")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_selector("text=You approved release")
    assert page.get_by_role("button", name="Approve").count() == 0
    approver.screenshot("release-approved-1280")
    pending_release.refresh_from_db()
    assert pending_release.state == "approved"
    assert approver.errors == [] and author.errors == []


def test_it_is_usable_from_the_keyboard(browse: Any, evaluated: dict[str, Any]) -> None:
    session = browse(768)
    session.login("vera")
    page = session.page
    page.keyboard.press("Tab")
    # the first stop is the skip link, and it is visible when focused
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    assert page.locator("a.skip").bounding_box()["x"] >= 0
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
