"""Report numbers against independent computations over known minute data (controlled clock)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from slo.budget.evaluation import slo_evaluate
from slo.models.budget import AlertEvent, SloStatus
from slo.models.reports import Report, ReportIsImmutable
from slo.reports import compute, selectors
from slo.reports.services import report_generate

from .conftest import NOW, PREVIOUS_START, TZ, WEEK_END, WEEK_START

pytestmark = pytest.mark.django_db


def independent(history, start, end, objective):
    """Budget figures by hand: present minutes only, good capped at valid per minute."""
    good, valid, present = history.window(start, end)
    good = np.where(present, np.minimum(good, valid), 0).sum()
    valid = np.where(present, valid, 0).sum()
    bad = valid - good
    allowed = float((Decimal(100) - Decimal(repr(objective))) / 100) * valid
    return {
        "sli": good / valid,
        "bad": bad,
        "valid": valid,
        "error_budget_total": allowed,
        "error_budget_remaining_ratio": 1 - bad / allowed,
        "burn_rate": (bad / valid) / float((Decimal(100) - Decimal(repr(objective))) / 100),
    }


def the_report(**extra):
    return report_generate(
        actor="test",
        now=NOW,
        data={"service": "shelf-vision", "period": "week", "start": "2026-11-16", "time_zone": TZ, **extra},
    )


def test_it_resolves_the_calendar_week_in_the_time_zone():
    period, problems = compute.report_period("week", TZ, start=None, now=NOW)
    assert problems == []
    assert (period.start, period.end, period.previous_start) == (WEEK_START, WEEK_END, PREVIOUS_START)
    assert period.label == "2026-W47"


def test_its_budget_figures_equal_an_independent_computation(make_slo, history, backdate_versions):
    slos = [make_slo(objective=99.0), make_slo(objective=99.5)]
    histories = [history(slos[0], seed=1), history(slos[1], seed=2, bad_rate=0.001)]
    backdate_versions()
    report = the_report()
    items = {s["id"]: s for s in report.numbers["services"][0]["slos"]}
    for slo, hist in zip(slos, histories, strict=True):
        expected = independent(hist, WEEK_START, WEEK_END, slo.objective)
        got = items[slo.pk]["period"]
        for key in ("sli", "bad", "valid", "error_budget_total", "error_budget_remaining_ratio", "burn_rate"):
            assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-9), key
        assert got["error_budget_consumed"] == pytest.approx(expected["bad"], rel=1e-9)
        before = independent(hist, PREVIOUS_START, WEEK_START, slo.objective)
        assert items[slo.pk]["previous_period"]["burn_rate"] == pytest.approx(before["burn_rate"], rel=1e-9)
        assert items[slo.pk]["burn_trend"]["direction"] == "up"  # the incident made this week worse
        days = items[slo.pk]["daily"]
        assert len(days) == 7 and days[0]["day"] == "2026-11-16"
        assert sum(d["valid"] for d in days) == pytest.approx(expected["valid"], rel=1e-9)


def test_it_gives_the_same_figures_as_the_slo_status_for_that_period(make_slo, history, backdate_versions):
    calendar = make_slo(window={"type": "calendar", "unit": "week", "timezone": TZ}, objective=99.0)
    rolling = make_slo(objective=99.0)
    history(calendar, seed=3)
    history(rolling, seed=4)
    backdate_versions()
    report = the_report()
    items = {s["id"]: s for s in report.numbers["services"][0]["slos"]}
    # The calendar SLO's status one minute before the week ends covers the whole week (the last
    # minute has no telemetry): the same budget figures as the report.
    slo_evaluate(slo_ids=[calendar.pk], now=WEEK_END - timedelta(minutes=1))
    status = SloStatus.objects.get(slo=calendar)
    for got in (items[calendar.pk]["period"], items[calendar.pk]["window_at_end"]):
        assert got["sli"] == pytest.approx(status.sli, rel=1e-12)
        assert got["error_budget_total"] == pytest.approx(status.error_budget_total, rel=1e-12)
        assert got["error_budget_consumed"] == pytest.approx(status.error_budget_consumed, rel=1e-12)
        assert got["error_budget_remaining_ratio"] == pytest.approx(status.error_budget_remaining, rel=1e-12)
    # The rolling SLO's own window at the week's end is its status at that instant.
    slo_evaluate(slo_ids=[rolling.pk], now=WEEK_END)
    status = SloStatus.objects.get(slo=rolling)
    at_end = items[rolling.pk]["window_at_end"]
    assert at_end["window"] == "rolling 28d"
    assert at_end["error_budget_remaining_ratio"] == pytest.approx(status.error_budget_remaining, rel=1e-12)
    assert at_end["sli"] == pytest.approx(status.sli, rel=1e-12)


def test_regenerating_a_past_period_gives_the_same_numbers(make_slo, history, backdate_versions, users):
    from slo.services import slo_update

    slo = make_slo(objective=99.0)
    history(slo, seed=5)
    backdate_versions()
    first = the_report()
    # Later changes must not alter the past: newer telemetry, a new SLO version, later alerts.
    history(make_slo(objective=90.0), seed=6)
    slo_update(actor=users["operator"], slo_id=slo.pk, data={**slo.spec, "objective": 95.0})
    AlertEvent.objects.create(
        state_key=f"slo:{slo.pk}:page",
        service=slo.service,
        slo=slo,
        kind="burn_rate",
        severity="page",
        state="firing",
        at=WEEK_END + timedelta(hours=1),
    )
    second = the_report()
    assert second.pk != first.pk
    first_slo = next(s for s in first.numbers["services"][0]["slos"] if s["id"] == slo.pk)
    second_slo = next(s for s in second.numbers["services"][0]["slos"] if s["id"] == slo.pk)
    assert first_slo == second_slo
    assert second_slo["objective_percent"] == 99.0  # the version in force during the week


def test_identical_inputs_give_an_identical_snapshot(make_slo, history, backdate_versions):
    history(make_slo(), seed=7)
    backdate_versions()
    first, second = the_report(), the_report()
    assert first.numbers == second.numbers
    assert first.numbers_sha256 == second.numbers_sha256


def test_a_snapshot_cannot_be_changed_or_deleted(make_slo, history, backdate_versions):
    history(make_slo(), seed=8)
    backdate_versions()
    report = the_report()
    report.numbers = {}
    with pytest.raises(ReportIsImmutable):
        report.save()
    with pytest.raises(ReportIsImmutable):
        Report.objects.filter(pk=report.pk).update(numbers={})
    with pytest.raises(ReportIsImmutable):
        Report.objects.filter(pk=report.pk).delete()
    with pytest.raises(ReportIsImmutable):
        report.delete()


def test_no_data_is_not_a_met_objective(make_slo, backdate_versions):
    make_slo()
    backdate_versions()
    report = the_report()
    period = report.numbers["services"][0]["slos"][0]["period"]
    assert period["sli"] is None and period["objective_met"] is None and period["data_quality"] == "no_data"
    assert report.numbers["summary"]["slos_no_data"] == 1


def test_it_lists_alert_episodes_clipped_to_the_period(make_slo, backdate_versions):
    slo = make_slo()
    backdate_versions()
    key = f"slo:{slo.pk}:page"

    def event(state, at):
        AlertEvent.objects.create(
            state_key=key, service=slo.service, slo=slo, kind="burn_rate", severity="page", state=state, at=at
        )

    event("firing", WEEK_START - timedelta(hours=2))  # already firing when the week starts
    event("resolved", WEEK_START + timedelta(hours=1))
    event("firing", WEEK_START + timedelta(days=3))
    event("resolved", WEEK_START + timedelta(days=3, minutes=45))
    event("firing", WEEK_END - timedelta(minutes=30))  # still firing at the end
    report = the_report()
    episodes = report.numbers["services"][0]["alert_episodes"]
    assert [e["duration_s"] for e in episodes] == [3600, 45 * 60, 30 * 60]
    assert episodes[0]["started_before_period"] and episodes[2]["ongoing_at_end"]
    assert episodes[1]["slo"] == slo.name
    assert report.numbers["services"][0]["slos"][0]["alerts"]["episodes"] == 3


def test_a_team_report_covers_every_service_the_team_owns(make_slo, backdate_versions, users):
    from slo.services import service_create

    service_create(
        actor=users["operator"],
        data={"name": "other-vision", "service_class": "batch", "owner": "vision-team", "tiers": ["edge"]},
    )
    service_create(
        actor=users["operator"],
        data={"name": "not-ours", "service_class": "batch", "owner": "someone-else", "tiers": ["edge"]},
    )
    make_slo()
    backdate_versions()
    report = report_generate(
        actor="test", now=NOW, data={"team": "vision-team", "period": "week", "time_zone": TZ}
    )
    assert report.numbers["scope"]["services"] == ["other-vision", "shelf-vision"]
    assert report.period_start == WEEK_START


def test_selector_reads_a_bounded_number_of_queries(
    make_slo, history, backdate_versions, django_assert_max_num_queries
):
    for seed in range(6):
        history(make_slo(), seed=seed)
    backdate_versions()
    period, _ = compute.report_period("week", TZ, start=None, now=NOW)
    with django_assert_max_num_queries(40):
        numbers = selectors.report_numbers(scope_kind="service", scope_value="shelf-vision", period=period)
    assert len(numbers["services"][0]["slos"]) == 6
