"""The composite SLO page and its link from the overview: each member's contribution to the burn."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from slo.composites.demo import JOURNEY
from slo.composites.evaluation import composite_evaluate
from slo.composites.services import composite_create
from slo.demo import seed_demo_catalog
from slo.models import Slo
from slo.models.composites import CompositeStatus
from tests.dashboard.test_accessibility import audit
from tests.slo.budget.conftest import load_minutes

pytestmark = pytest.mark.django_db


def chart_json(body: str, chart_id: str) -> dict[str, Any]:
    match = re.search(rf'<script id="{chart_id}" type="application/json">(.*?)</script>', body, re.S)
    assert match, f"no JSON for {chart_id}"
    return json.loads(match.group(1))


@pytest.fixture
def burning(users, now):
    """The demo journey with edge-latency failing half its requests for the last 70 minutes and
    fallback-success silent for the last 2 hours, evaluated every 5 minutes of the last half hour."""
    seed_demo_catalog(actor=users["operator"])
    composite = composite_create(actor=users["operator"], data=JOURNEY)
    end = now - timedelta(minutes=now.minute % 5)
    start = end - timedelta(hours=8)
    rng = np.random.default_rng(3)
    for i, member in enumerate(JOURNEY["members"]):
        service, name = member["slo"].split("/")
        minutes = 8 * 60
        valid = rng.integers(50, 100, size=minutes).astype(float)
        good = valid - rng.binomial(valid.astype(int), 0.001)
        present = np.ones(minutes, dtype=bool)
        if i == 0:
            good[-70:] = np.floor(valid[-70:] / 2)
        if i == 3:
            present[-120:] = False
        load_minutes(Slo.objects.get(service__name=service, name=name), start, good, valid, present)
    for back in (30, 25, 20, 15, 10, 5, 0):
        composite_evaluate(composite_ids=[composite.pk], now=end - timedelta(minutes=back))
    return composite


def test_the_page_shows_each_members_contribution_and_the_page_alert(page_for, burning):
    response = page_for("viewer").get(f"/composites/{burning.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert audit(body) == []  # landmarks, one h1, th scopes, labelled charts
    assert "/static/vendor/plotly.min.js" in body and "/static/js/charts.js" in body
    assert "paging" in body
    assert "Burning member: shelf-vision/edge-latency." in body
    # the members table: edge-latency carries almost all of the 1h burn; fallback-success has no data
    row = re.search(r'<tr data-member="shelf-vision/edge-latency">(.*?)</tr>', body, re.S).group(1)
    assert re.search(r"\((9\d\.\d|100\.0)%\)", row), row
    silent = re.search(r'<tr data-member="shelf-vision/fallback-success">(.*?)</tr>', body, re.S).group(1)
    assert "no data" in silent
    assert (
        "shelf-vision/fallback-success (no data over 5m, 30m, 1h, 2h) — left out of those windows' figures, "
        "never counted as good" in body
    )

    # the stacked chart: the members' contributions add up to the evaluated 1h burn rate
    status = CompositeStatus.objects.get(composite=burning)
    figure = chart_json(body, "chart-contributions")
    assert [t["name"] for t in figure["data"]] == [m["slo"] for m in JOURNEY["members"]]
    last = sum(t["y"][-1] or 0 for t in figure["data"])
    assert last == pytest.approx(status.burn_rates["1h"], rel=1e-9)
    assert figure["data"][3]["y"][-1] is None  # no data is a gap, not a zero
    assert any(a["text"].startswith("page 13.44×") for a in figure["layout"]["annotations"])
    by_window = chart_json(body, "chart-by-window")
    assert "period" in by_window["data"][0]["x"]
    assert f"/api/v1/composites/{burning.pk}/openslo/" in body


def test_the_overview_links_to_the_composite(page_for, burning):
    body = page_for("viewer").get("/").content.decode()
    section = re.search(r"<table class=\"grid\" data-composites>(.*?)</table>", body, re.S).group(1)
    assert f'href="/composites/{burning.pk}/"' in section
    assert "shelf-vision/shelf-vision-journey" in section and "paging" in section


def test_roles(page_for, burning):
    assert page_for("outsider").get(f"/composites/{burning.pk}/").status_code == 403
    assert page_for(None).get(f"/composites/{burning.pk}/").status_code == 302
    assert page_for("viewer").get("/composites/999999/").status_code == 404
