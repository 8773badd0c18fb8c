"""Bucket maintenance: rollups always equal the sums of their minutes, whatever is re-sent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slo.budget.buckets import MinuteCount, floor_day, floor_hour
from slo.budget.evaluation import budget_minutes_record
from slo.models.budget import BudgetDay, BudgetHour, BudgetMinute
from tests.slo.budget.conftest import NOW

pytestmark = pytest.mark.django_db

START = NOW.replace(hour=22, minute=50) - timedelta(days=1)  # batches straddle hours and a day

batches = st.lists(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 50), st.integers(0, 50)),  # minute offset, good, valid
        min_size=1,
        max_size=12,
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches)
def test_rollups_always_equal_the_sum_of_their_minutes(make_slo, batches):
    slo = make_slo()  # a fresh SLO per example (the examples share one test transaction)
    for batch in batches:
        budget_minutes_record(
            rows=[MinuteCount(slo.pk, START + timedelta(minutes=m), g, v) for m, g, v in batch], now=START
        )
    minutes = list(BudgetMinute.objects.filter(slo_id=slo.pk).values_list("minute", "good", "valid"))
    expected_hours: dict = {}
    for minute, good, valid in minutes:
        acc = expected_hours.setdefault(floor_hour(minute), [0.0, 0.0, 0])
        acc[0] += good
        acc[1] += valid
        acc[2] += 1
    hours = {
        h: [g, v, p]
        for h, g, v, p in BudgetHour.objects.filter(slo_id=slo.pk).values_list(
            "hour", "good", "valid", "present_minutes"
        )
    }
    assert {h: v for h, v in hours.items() if v[2]} == expected_hours
    expected_days: dict = {}
    for hour, (good, valid, present) in expected_hours.items():
        acc = expected_days.setdefault(floor_day(hour), [0.0, 0.0, 0])
        acc[0] += good
        acc[1] += valid
        acc[2] += present
    days = {
        d: [g, v, p]
        for d, g, v, p in BudgetDay.objects.filter(slo_id=slo.pk).values_list(
            "day", "good", "valid", "present_minutes"
        )
    }
    assert {d: v for d, v in days.items() if v[2]} == expected_days


def test_minutes_older_than_retention_are_ignored(make_slo, settings):
    slo = make_slo()
    old = NOW - timedelta(days=settings.TELEMETRY_MINUTE_RETENTION_DAYS, minutes=1)
    assert budget_minutes_record(rows=[MinuteCount(slo.pk, old, 1, 1)], now=NOW) == 0
    assert not BudgetHour.objects.filter(slo_id=slo.pk).exists()
