"""The SLO page's time charts: budget history over the whole window (back-filled for the demo by the
budget engine), policy thresholds, "too few points", and release and alert markers."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.dashboard.conftest import record_and_evaluate
from tests.dashboard.test_slo_views import chart_json

pytestmark = pytest.mark.django_db


def parse(text: str) -> datetime:
    """A chart time: the reader's wall time (UTC for these viewers, as the axis title says)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_the_demo_budget_chart_has_points_over_its_history_and_spans_the_window(
    page_for: Any, now: datetime
) -> None:
    from slo.demo import seed_demo_catalog
    from slo.demo_history import seed_demo
    from slo.models import Slo

    seed_demo_catalog()
    out = io.StringIO()
    seed_demo(days=3, stdout=out)
    assert "hourly budget points" in out.getvalue()
    slo = Slo.objects.get(service__name="shelf-vision", name="edge-latency")  # rolling 28 days
    body = page_for("viewer").get(f"/slos/{slo.pk}/").content.decode()
    figure = chart_json(body, "chart-burndown")
    trace = figure["data"][0]
    points = [(parse(x), y) for x, y in zip(trace["x"], trace["y"], strict=True) if y is not None]
    # an hourly point for every whole hour of the three days of history (the first hour excepted)
    assert len(points) >= 3 * 24 - 2, len(points)
    assert points[0][0] <= now - timedelta(days=3) + timedelta(hours=2)
    assert points[-1][0] >= now - timedelta(hours=1)
    # the incident three days ago opens this short history: overspent first, recovering since
    values = [y for _t, y in points]
    assert values[0] < 0 < values[-1], (values[0], values[-1])
    # the axis is the whole 28-day window, not the span of the data
    lo, hi = (parse(t) for t in figure["layout"]["xaxis"]["range"])
    assert timedelta(days=27, hours=23) < hi - lo <= timedelta(days=28, minutes=1)
    assert 'data-too-few="chart-burndown"' not in body
    # budget spent and the policy's low threshold are marked
    labels = [a["text"] for a in figure["layout"]["annotations"]]
    assert any(label.startswith("budget spent") for label in labels), labels
    assert any(label.startswith("low") for label in labels), labels
    assert {s["y0"] for s in figure["layout"]["shapes"] if s.get("yref") == "y"} == {0.0, 25.0}
    # seeding again adds nothing
    again = io.StringIO()
    seed_demo(days=3, stdout=again)
    assert "already seeded" in again.getvalue()


def test_back_filled_points_are_what_the_engine_writes_at_that_hour(make_slo: Any, now: datetime) -> None:
    from slo.budget.buckets import MinuteCount, floor_hour
    from slo.budget.evaluation import budget_minutes_record, slo_evaluate
    from slo.demo_history import status_history_backfill
    from slo.models.budget import SloStatusPoint

    slo = make_slo("backfilled")
    start = floor_hour(now) - timedelta(hours=6)
    budget_minutes_record(
        rows=[
            MinuteCount(slo.pk, start + timedelta(minutes=i), 100 - (5 if 120 <= i < 180 else 0), 100.0)
            for i in range(6 * 60)
        ]
    )
    assert status_history_backfill(slo_ids=[slo.pk], start=start, end=start + timedelta(hours=6)) == 6
    hour = start + timedelta(hours=4)
    backfilled = SloStatusPoint.objects.get(slo_id=slo.pk, at=hour)
    SloStatusPoint.objects.filter(slo_id=slo.pk, at=hour).delete()
    slo_evaluate(slo_ids=[slo.pk], now=hour)  # the engine's own evaluation at that instant
    evaluated = SloStatusPoint.objects.get(slo_id=slo.pk, at=hour)
    assert backfilled.error_budget_remaining == pytest.approx(evaluated.error_budget_remaining)
    assert backfilled.burn_rate_1h == pytest.approx(evaluated.burn_rate_1h)
    assert (backfilled.alert_state, backfilled.data_quality) == (
        evaluated.alert_state,
        evaluated.data_quality,
    )
    # 300 bad of 24,000 in 4 hours against a 1% budget (240): a quarter overspent
    assert evaluated.error_budget_remaining == pytest.approx(1 - 300 / 240)


def test_a_chart_with_too_few_points_says_so(page_for: Any, make_slo: Any, now: datetime) -> None:
    from slo.budget.evaluation import slo_evaluate
    from slo.models.budget import SloStatusPoint

    slo = make_slo("young")
    record_and_evaluate({slo: lambda i: 0.0}, now, minutes=30)
    # the evaluations of the last hour fall in at most two hours: one or two hourly points
    SloStatusPoint.objects.filter(slo_id=slo.pk).exclude(
        at=SloStatusPoint.objects.filter(slo_id=slo.pk).latest("at").at
    ).delete()
    slo_evaluate(slo_ids=[slo.pk], now=now)
    body = page_for("viewer").get(f"/slos/{slo.pk}/").content.decode()
    assert 'data-too-few="chart-burndown"' in body
    assert "only 1 point so far, too few to draw a line" in body
    figure = chart_json(body, "chart-burndown")
    assert figure["data"][0]["mode"] == "lines+markers"  # the one point is still drawn, as a dot


def test_release_and_rollback_markers_appear_on_the_slo_charts(
    page_for: Any, users: dict[str, Any], pending_release: Any, now: datetime
) -> None:
    from routing.releases.lifecycle import release_approve, release_rollback
    from routing.releases.rollout import release_step
    from slo.budget.buckets import MinuteCount
    from slo.budget.evaluation import budget_minutes_record
    from slo.demo_history import status_history_backfill
    from slo.models import Slo

    slo = Slo.objects.get(service=pending_release.service, name="latency")
    # three hours of budget history, as the demo back-fills it
    budget_minutes_record(
        rows=[MinuteCount(slo.pk, now - timedelta(minutes=180 - i), 100.0, 100.0) for i in range(120)]
    )
    assert status_history_backfill(slo_ids=[slo.pk], start=now - timedelta(hours=3), end=now) >= 2

    # `now` is the wall clock floored to the minute, and the page reads the wall clock, up to the
    # end of the chart (exclusive): events stamped after `now` could fall after the page's clock
    # when the test runs in a minute's first seconds, so these are stamped just before it
    release_approve(
        actor=users["admin"], release_id=pending_release.pk, comment="ok", now=now - timedelta(seconds=3)
    )
    release_step(release_id=pending_release.pk, now=now - timedelta(seconds=2))
    pending_release.refresh_from_db()
    assert pending_release.state == "rolling_out", pending_release.state
    release_rollback(
        actor=users["operator"],
        release_id=pending_release.pk,
        reason="latency regression",
        now=now - timedelta(seconds=1),
    )
    body = page_for("viewer").get(f"/slos/{slo.pk}/?resolution=minute&range=6h").content.decode()
    for chart_id in ("chart-burndown", "chart-sli", "chart-burn"):
        notes = [a["text"] for a in chart_json(body, chart_id)["layout"]["annotations"]]
        assert f"release #{pending_release.pk}" in notes, (chart_id, notes)
        assert f"rollback #{pending_release.pk}" in notes, (chart_id, notes)
    assert f"rollback: release #{pending_release.pk} (Describe v2) rolled back: latency regression" in body
    # the service page's time charts carry them too
    service_page = (
        page_for("viewer").get(f"/services/{pending_release.service.name}/?range=6h").content.decode()
    )
    notes = [a["text"] for a in chart_json(service_page, "chart-routes")["layout"]["annotations"]]
    assert f"rollback #{pending_release.pk}" in notes, notes


def test_alert_transitions_are_marked(page_for: Any, evaluated: dict[str, Any]) -> None:
    body = page_for("viewer").get(f"/slos/{evaluated['burning'].pk}/").content.decode()
    notes = [a["text"] for a in chart_json(body, "chart-burn")["layout"]["annotations"]]
    assert "page fires" in notes, notes
    healthy = page_for("viewer").get(f"/slos/{evaluated['healthy'].pk}/").content.decode()
    assert "page fires" not in [a["text"] for a in chart_json(healthy, "chart-burn")["layout"]["annotations"]]
