"""The demo's weekly maintenance window (Sundays 02:00-04:00 Europe/Berlin) removes exactly its
minutes from shelf-vision/cloud-latency's budget, checked against plain Python over the raw
telemetry minutes; the SLO page's budget chart shades it and says who wrote it."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.dashboard.test_slo_views import chart_json

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def in_window(minute: datetime) -> bool:
    local = minute.astimezone(BERLIN)
    return local.weekday() == 6 and 2 <= local.hour < 4


def test_the_demo_maintenance_window_is_exact_and_shaded_on_the_budget_chart(page_for: Any) -> None:
    from slo.corrections import demo as corrections_demo
    from slo.demo import seed_demo_catalog
    from slo.demo_history import seed_demo
    from slo.models import Slo
    from slo.models.budget import BudgetMinute, SloStatus
    from slo.models.telemetry import SliMinute

    seed_demo_catalog()
    out = io.StringIO()
    corrections_demo.seed_demo(days=8, stdout=out)
    seed_demo(days=8, stdout=out)  # 8 days always hold one Sunday window
    corrections_demo.seed_demo(days=8, stdout=out)
    assert "demo corrections: already seeded" in out.getvalue()
    slo = Slo.objects.get(service__name="shelf-vision", name="cloud-latency")

    # Independent: the raw telemetry minutes, minus those whose Berlin wall clock is Sunday 02-04.
    good = valid = 0
    excluded = []
    for minute, g, v in SliMinute.objects.filter(slo_id=slo.pk, present=True).values_list(
        "minute", "good", "valid"
    ):
        at = datetime.fromtimestamp(minute * 60, tz=UTC)
        if in_window(at):
            excluded.append(at)
            continue
        good += min(g, v)
        valid += v
    assert len(excluded) >= 60  # at least one Sunday: 2 h (1 h / 3 h on a DST Sunday)
    zeroed = BudgetMinute.objects.filter(slo_id=slo.pk, valid=0, events=0).values_list("minute", flat=True)
    assert sorted(zeroed) == sorted(excluded)
    period = SloStatus.objects.get(slo=slo).windows["period"]
    assert (period["good"], period["valid"]) == (float(good), float(valid))

    body = page_for("viewer").get(f"/slos/{slo.pk}/").content.decode()
    figure = chart_json(body, "chart-burndown")
    rects = [s for s in figure["layout"]["shapes"] if s["type"] == "rect"]
    assert figure["layout"]["xaxis"]["title"]["text"].endswith("(UTC)")  # the viewer's zone: UTC wall times
    spans = sorted(
        (
            datetime.fromisoformat(r["x0"]).replace(tzinfo=UTC),
            datetime.fromisoformat(r["x1"]).replace(tzinfo=UTC),
        )
        for r in rects
    )
    runs: list[list[datetime]] = []
    for at in sorted(excluded):  # contiguous runs of excluded minutes: one shaded span each
        if runs and at - runs[-1][1] == timedelta(minutes=1):
            runs[-1][1] = at
        else:
            runs.append([at, at])
    history_end = max(excluded[-1], max(z for z in zeroed)) + timedelta(minutes=1)
    shaded = {start: end for start, end in spans}
    for a, b in runs:  # a run cut by the end of the history may belong to a window still going on
        assert a in shaded and (
            shaded[a] == b + timedelta(minutes=1) or b + timedelta(minutes=1) == history_end
        )
    assert any(a["text"].startswith("correction #") for a in figure["layout"]["annotations"])
    assert "Status corrections shaded on this chart" in body
    assert corrections_demo.DEMO_REASON in body and "by demo-seed" in body

    # An SLO outside the scope has no shaded span.
    other = Slo.objects.get(service__name="shelf-vision", name="edge-latency")
    figure = chart_json(page_for("viewer").get(f"/slos/{other.pk}/").content.decode(), "chart-burndown")
    assert not [s for s in figure["layout"]["shapes"] if s["type"] == "rect"]
