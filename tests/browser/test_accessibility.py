"""Basic accessibility of every dashboard page, checked by axe-core (the engine behind Lighthouse's
accessibility audit) in the real browser: WCAG 2.0/2.1 level A and AA rules (labels, names,
contrast, landmarks, language, headings), at desktop and tablet width, and no page scrolls sideways
at tablet width (wide tables scroll inside their own container)."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WCAG_A_AA = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
SKIP = re.compile(r"^/(static|api|admin|logout|login)/|/(export|rules|csv|download)\b|\.(csv|ya?ml|json)$")


@pytest.fixture
def every_page_has_data(users: dict[str, Any], service: Any, pending_release: Any) -> Any:
    """Data behind every page: routing documents, gateways with an hour of pushed telemetry,
    evaluated SLOs, a release pending approval, a daily maintenance window (shaded on the budget
    charts, listed in the report), and a generated report."""
    from datetime import timedelta

    from django.utils import timezone

    from slo.corrections.services import correction_create
    from slo.reports.services import report_generate

    start = (timezone.now() - timedelta(days=30)).replace(hour=3, minute=0, second=0, microsecond=0)
    correction_create(
        actor=users["operator"],
        data={
            "reason": "nightly maintenance",
            "scope": {"service": service.name},
            "start": start.isoformat(),
            "recurrence": {"rrule": "FREQ=DAILY", "timezone": "UTC", "duration_minutes": 30},
        },
    )
    report_generate(actor=users["admin"], data={"service": service.name, "period": "week"})
    return pending_release


def internal_links(page: Any) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href^='/']", "links => links.map(a => a.getAttribute('href'))")
    return [h.split("#")[0].split("?")[0] for h in hrefs]


def axe_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG_A_AA)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(n["target"]) for n in v["nodes"][:3])
        for v in results.response["violations"]
    ]


def test_every_dashboard_page_passes_axe_at_desktop_and_tablet_width(
    browse: Any, every_page_has_data: Any
) -> None:
    release = every_page_has_data
    session = browse(1280)
    session.login("ada")  # an admin sees every action, so every form and button is checked
    page = session.page

    # crawl from the overview: every page a person can reach from the navigation and its links
    queue, seen = ["/", f"/releases/{release.pk}/"], set()
    while queue and len(seen) < 40:
        path = queue.pop(0)
        if path in seen or SKIP.search(path):
            continue
        seen.add(path)
        page.goto(path)
        queue += [link for link in internal_links(page) if link not in seen]
    expected = {
        "/",
        "/fleet/",
        "/policies/",
        "/releases/",
        "/reports/",
        "/audit/",
        "/profile/",
        f"/releases/{release.pk}/",
    }
    assert expected <= seen
    assert any(p.startswith("/slos/") for p in seen) and any(p.startswith("/services/") for p in seen)
    assert any(p.startswith("/policies/") and p != "/policies/" for p in seen)
    assert any(re.fullmatch(r"/reports/\d+/", p) for p in seen)

    problems: dict[str, list[str]] = {}
    for width in (1280, 768):
        page.set_viewport_size({"width": width, "height": 900})
        for path in sorted(seen):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            found = axe_violations(page)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                found.append(f"the page scrolls sideways by {overflow}px")
            if found:
                problems[f"{path} at {width}px"] = found
    assert problems == {}, "\n".join(
        f"{where}:\n  " + "\n  ".join(found) for where, found in problems.items()
    )
    assert session.errors == [], session.errors
