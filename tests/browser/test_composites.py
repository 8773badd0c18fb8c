"""The composite SLO page in a real browser: reached from the overview, its charts drawn."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dashboard.test_composite_views import burning  # noqa: F401 - the data fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_overview_links_to_the_composite_page_and_its_charts_render(browse: Any, burning: Any) -> None:  # noqa: F811
    session = browse(1280)
    session.login("vera")
    page = session.page
    page.get_by_role("link", name="shelf-vision/shelf-vision-journey", exact=True).click()
    page.wait_for_selector("[data-chart='chart-contributions'] .main-svg", timeout=20_000)
    assert page.locator("[data-chart='chart-by-window'] .main-svg").count() >= 1
    assert page.locator("[data-chart='chart-budget'] .main-svg").count() >= 1
    # one stacked area per member in the contributions chart
    assert page.locator("[data-chart='chart-contributions'] .scatterlayer .trace").count() == 4
    assert page.get_by_role("heading", name="Members and their contribution to the burn").is_visible()
    session.screenshot("composite-detail-1280")
    assert session.errors == [], session.errors
