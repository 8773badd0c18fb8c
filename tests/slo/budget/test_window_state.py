"""Incremental window state: whatever is written (late, backfilled, re-sent, in the future) and
however far the clock moves, the running totals equal a re-sum of the buckets."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slo.budget import window_state
from slo.budget.buckets import MinuteCount, window_sums_for
from slo.budget.evaluation import budget_minutes_record, slo_evaluate
from slo.engine import batch_params
from slo.models.budget import WindowState
from slo.spec import SloSpec
from tests.slo.budget.conftest import NOW

pytestmark = pytest.mark.django_db

# A write: (minutes before the current instant, good, valid); negative offsets are in the future.
# Offsets reach 29 days back (the 28-day period's oldest hour) and 3 days back (the 3d window's).
EDGES = [-1, 0, 1, 2, 4, 5, 6, 29, 30, 31, 59, 60, 61, 119, 120, 121, 359, 360, 361, 1439, 1440, 1441]
offsets = st.one_of(
    st.sampled_from(EDGES),  # each window's first and last minutes, and just outside
    st.integers(-5, 400),
    st.integers(1400, 1500),
    st.integers(4250, 4330),
    st.integers(40260, 40330),
)
writes = st.lists(st.tuples(offsets, st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=15)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("write"), writes),
        st.tuples(st.just("advance"), st.integers(1, 130)),
    ),
    min_size=1,
    max_size=10,
)


def _assert_equal(actual, expected) -> None:  # noqa: ANN001 - WindowSums
    for name in ("good", "valid", "valid_events", "missing_minutes"):
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), err_msg=name)


def _state_as_resum(slo_ids, specs) -> None:  # noqa: ANN001
    """Each stored state equals a re-sum of the buckets at its own `as_of`."""
    for slo_id, spec in zip(slo_ids, specs, strict=True):
        state = WindowState.objects.filter(slo_id=slo_id).first()
        if state is None:
            continue
        at = window_state._at(state.as_of)
        params = batch_params([spec], now=at)
        expected, _ = window_sums_for([slo_id], params, at)
        width = len(params.burn_windows_min) + 1
        sums = np.frombuffer(bytes(state.sums), dtype=np.float64).reshape(width, 4)
        np.testing.assert_array_equal(np.minimum(sums[:, 0], sums[:, 1]), expected.good[0])
        np.testing.assert_array_equal(sums[:, 1], expected.valid[0])
        np.testing.assert_array_equal(sums[:, 2], expected.valid_events[0])
        np.testing.assert_array_equal(params.window_minutes[0] - sums[:, 3], expected.missing_minutes[0])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, method=st.sampled_from(["occurrences", "timeslices"]), start_offset=st.integers(0, 59))
def test_running_totals_equal_a_resum_after_random_late_and_backfilled_writes(
    make_slo, monkeypatch, steps, method, start_offset
):
    monkeypatch.setattr(window_state, "REBUILD_EVERY_MIN", 10**9)  # never rebuilt on schedule
    slos = [
        make_slo(
            **({"budgeting_method": "timeslices", "timeslice_target": 0.9} if method == "timeslices" else {})
        ),
        make_slo(window={"type": "calendar", "unit": "month", "timezone": "UTC"}),
    ]
    ids = [s.pk for s in slos]
    specs = [SloSpec.model_validate(s.spec) for s in slos]
    now = NOW + timedelta(minutes=start_offset)
    incremental_steps = 0
    # Always end with writes on every window's edges (for both SLOs), checked, then one more minute.
    edges = [(offset, 7, 9 + k % 2) for offset in EDGES for k in range(2)]
    for kind, value in [("advance", 0), *steps, ("write", edges), ("advance", 1)]:
        if kind == "write":
            budget_minutes_record(
                rows=[
                    MinuteCount(ids[k % 2], now - timedelta(minutes=offset), good, valid)
                    for k, (offset, good, valid) in enumerate(value)
                ]
            )
            _state_as_resum(ids, specs)
            continue
        now += timedelta(minutes=value)
        params = batch_params(specs, now=now)
        with transaction.atomic():
            had_state = WindowState.objects.filter(slo_id__in=ids).count() == 2
            sums, _queries, rebuilt = window_state.window_sums_incremental(ids, params, now)
        expected, _ = window_sums_for(ids, params, now)
        _assert_equal(sums, expected)
        if had_state and value <= window_state.EXACT_MAX_MIN:
            assert rebuilt == 0  # the running totals answered, not a re-sum
            incremental_steps += 1
    assert incremental_steps >= 1


def test_evaluation_uses_the_state_and_a_late_minute_moves_it(make_slo, monkeypatch):
    monkeypatch.setattr(window_state, "REBUILD_EVERY_MIN", 10**9)
    slo = make_slo()
    budget_minutes_record(
        rows=[MinuteCount(slo.pk, NOW - timedelta(minutes=m), 90, 100) for m in range(1, 120)]
    )
    first = slo_evaluate(slo_ids=[slo.pk], now=NOW)
    assert first.rebuilt == 1
    # A late minute 30 minutes back (inside 1h, outside 5m) and the next minute, then evaluate.
    budget_minutes_record(
        rows=[MinuteCount(slo.pk, NOW - timedelta(minutes=30), 0, 100), MinuteCount(slo.pk, NOW, 100, 100)]
    )
    second = slo_evaluate(slo_ids=[slo.pk], now=NOW + timedelta(minutes=1))
    assert second.rebuilt == 0
    status = slo.status
    status.refresh_from_db()
    # 1h window at NOW+1: minutes NOW-59 .. NOW: 59 old minutes (5,900 valid, 590 bad), the late one
    # replaced (100 bad), the new one (no bad) => 6,000 valid, 590 - 10 + 100 bad.
    assert status.windows["1h"]["valid"] == 6000
    assert status.windows["1h"]["good"] == 6000 - 680
    assert status.windows["5m"]["good"] == 460 and status.windows["5m"]["valid"] == 500
