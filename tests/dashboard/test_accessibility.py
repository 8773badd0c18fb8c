"""Basic accessibility checks on every page: landmarks, labelled form fields, images with text,
table headers with scope, one h1. (axe-core is not installable here without a CDN.)"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


class Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.label_for: set[str] = set()
        self.h1 = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = dict(attrs)
        self.tags.append((tag, data))
        if tag == "label" and data.get("for"):
            self.label_for.add(str(data["for"]))
        if tag == "h1":
            self.h1 += 1


def audit(body: str) -> list[str]:
    parser = Audit()
    parser.feed(body)
    problems = []
    names = [tag for tag, _ in parser.tags]
    for landmark in ("header", "nav", "main"):
        if landmark not in names:
            problems.append(f"no <{landmark}>")
    if parser.h1 != 1:
        problems.append(f"{parser.h1} h1 elements")
    for tag, data in parser.tags:
        if tag in ("input", "select", "textarea") and data.get("type") not in ("hidden", "submit"):
            labelled = (
                data.get("id") in parser.label_for or data.get("aria-label") or data.get("aria-labelledby")
            )
            if not labelled:
                problems.append(f"unlabelled <{tag} name={data.get('name')}>")
        if tag == "img" and "alt" not in data:
            problems.append("img without alt")
        if tag == "th" and data.get("scope") not in ("col", "row"):
            problems.append("th without scope")
        if tag == "div" and "data-chart" in data and not data.get("aria-label"):
            problems.append("chart without an accessible name")
    return problems


def test_every_page_has_landmarks_labels_and_headers(
    page_for: Any, pending_release: Any, documents: dict[str, Any]
) -> None:
    from routing.models.fleet import Gateway
    from slo.models import Slo

    client = page_for("approver")
    slo = Slo.objects.get(name="latency")
    pages = [
        "/",
        "/audit/",
        "/reports/",
        f"/slos/{slo.pk}/",
        "/services/shelf-vision/",
        "/policies/",
        f"/policies/routing-policies/{documents['policy_v1'].line_id}/",
        f"/policies/cache-configs/{documents['cache_v1'].line_id}/",
        "/fleet/",
        *[f"/fleet/gateways/{pk}/" for pk in Gateway.objects.values_list("pk", flat=True)[:1]],
        "/releases/",
        f"/releases/{pending_release.pk}/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert audit(response.content.decode()) == [], url


def test_the_login_page_is_labelled(page_for: Any) -> None:
    body = page_for(None).get("/login/").content.decode()
    assert 'for="id_username"' in body and 'for="id_password"' in body


def test_the_authoring_forms_are_labelled_empty_and_refused(page_for: Any, documents: dict[str, Any]) -> None:
    """Every box of the SLO, editor and release forms has its label, empty and with the service's
    refusal shown at the fields (what axe checks in Chromium: tests/browser/test_authoring.py)."""
    from slo.models import Slo

    client = page_for("admin")
    slo = Slo.objects.get(name="latency")
    line = documents["policy_v2"].line_id
    responses = {
        "new SLO": client.get("/slos/new/"),
        "refused SLO": client.post("/slos/new/", {"service": "shelf-vision", "name": "X", "objective": "x"}),
        "edit SLO": client.get(f"/slos/{slo.pk}/edit/"),
        "editor": client.get(f"/policies/routing-policies/{line}/edit/"),
        "refused editor": client.post(
            f"/policies/routing-policies/{line}/edit/",
            {"action": "save", "document": "rules: [", "parent_version": "2"},
        ),
        "cache editor": client.get(f"/policies/cache-configs/{documents['cache_v1'].line_id}/edit/"),
        "new release": client.get("/releases/new/"),
        "refused release": client.post("/releases/new/", {"service": "shelf-vision", "wave_1_percent": "x"}),
    }
    for name, response in responses.items():
        assert response.status_code == 200, name
        body = response.content.decode()
        assert audit(body) == [], name
    for name in ("refused SLO", "refused editor", "refused release"):
        assert 'aria-invalid="true"' in responses[name].content.decode(), name
