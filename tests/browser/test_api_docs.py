"""The API reference in a real browser: Swagger UI loads from our static files under the site's CSP
(no CDN, no inline script), renders the operations, and logs no console error or CSP violation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_anonymous_visits_to_the_api_docs_go_to_the_login_page_and_back(
    browse: Any, users: dict[str, Any]
) -> None:
    session = browse()
    page = session.page
    page.goto("/api/v1/docs/")
    page.wait_for_url("**/login/?next=/api/v1/docs/")
    page.get_by_label("Username").fill("vera")
    page.get_by_label("Password").fill("pw-vera-123456")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/api/v1/docs/")
    page.locator(".opblock-summary-path").first.wait_for(timeout=30_000)


def test_the_api_docs_render_the_operations_without_csp_violations(
    browse: Any, users: dict[str, Any]
) -> None:
    session = browse()
    session.login("vera")
    page = session.page
    blocked: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and blocked.append(m.text))
    page.on("requestfailed", lambda r: blocked.append(f"failed: {r.url}"))
    origin = "/".join(page.url.split("/")[:3])
    outside: list[str] = []  # no CDN, no web fonts
    page.on("request", lambda r: not r.url.startswith((origin, "data:")) and outside.append(r.url))
    response = page.goto("/api/v1/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_text("Inference SLO control plane API").first.wait_for(timeout=30_000)
    page.locator(".opblock-summary-path").first.wait_for(timeout=30_000)
    seen: set[str] = set()
    # Swagger UI renders the tags near the viewport: scroll through the page collecting paths
    for _ in range(300):
        seen.update(p.replace("\u200b", "") for p in page.locator(".opblock-summary-path").all_inner_texts())
        if "/api/v1/slos/" in seen and "/api/v1/releases/" in seen:
            break
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(50)
    assert {"/api/v1/alerts/", "/api/v1/slos/", "/api/v1/releases/"} <= seen, sorted(seen)[:20]
    assert page.locator(".opblock-summary-method", has_text="GET").count() > 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
    assert blocked == [], blocked
    assert outside == [], outside
    assert session.errors == [], session.errors
