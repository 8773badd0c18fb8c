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
