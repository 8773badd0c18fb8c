from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slo.counters import MinuteCounts, series_increases, sum_increases, to_epoch_minute

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_it_computes_plain_increases_without_extrapolation() -> None:
    inc, ok = series_increases([10, 13, 13, 20], [True] * 4)
    assert ok.tolist() == [False, True, True, True]
    assert inc.tolist() == [0, 3, 0, 7]


def test_it_counts_a_drop_as_a_restart_from_zero() -> None:
    inc, ok = series_increases([100, 120, 4, 9], [True] * 4)
    assert inc.tolist()[1:] == [20, 4, 5]
    assert ok.all() == np.False_ and ok[1:].all()


def test_it_marks_a_gap_and_the_minute_after_it_missing() -> None:
    inc, ok = series_increases([1, 2, 0, 0, 9, 10], [True, True, False, False, True, True])
    assert ok.tolist() == [False, True, False, False, False, True]
    assert inc[5] == 1


def test_it_counts_the_first_sample_only_for_a_new_series() -> None:
    _, ok = series_increases([0, 7, 9], [False, True, True])
    assert ok.tolist() == [False, False, True]
    inc, ok = series_increases([0, 7, 9], [False, True, True], first_is_new=True)
    assert ok.tolist() == [False, True, True]
    assert inc.tolist() == [0, 7, 2]


def test_sum_is_missing_when_one_series_is_in_a_gap() -> None:
    values = [[0, 1, 2, 3, 4, 5, 6], [0, 10, 20, 0, 40, 50, 60]]
    present = [[True] * 7, [True, True, True, False, True, True, True]]
    inc, ok = sum_increases(values, present, lookback_minutes=2)
    assert ok.tolist() == [False, True, True, False, False, True, True]
    assert inc.tolist() == [0, 11, 11, 0, 0, 11, 11]


def test_a_new_series_with_a_witness_counts_from_zero() -> None:
    values = [[0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 7, 9]]
    present = [[True] * 6, [False, False, False, False, True, True]]
    inc, ok = sum_increases(values, present, lookback_minutes=2)
    assert ok[1:].all()
    assert inc.tolist()[1:] == [1, 1, 1, 8, 3]


def test_without_a_witness_a_newcomer_is_missing() -> None:
    # a Prometheus outage: every series vanishes, then all come back with cumulative values
    values = [[5, 6, 0, 0, 0, 900, 901], [5, 6, 0, 0, 0, 800, 802]]
    present = [[True, True, False, False, False, True, True]] * 2
    inc, ok = sum_increases(values, present, lookback_minutes=2)
    assert ok.tolist() == [False, True, False, False, False, False, True]
    assert inc[6] == 3


def test_a_series_that_goes_away_stops_counting_after_lookback() -> None:
    values = [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 0, 0, 0, 0, 0]]
    present = [[True] * 8, [True, True, True, False, False, False, False, False]]
    inc, ok = sum_increases(values, present, lookback_minutes=2)
    assert ok.tolist() == [False, True, True, True, True, True, True, True]
    assert inc.tolist()[1:] == [2, 2, 1, 1, 1, 1, 1]


def test_a_quiet_series_near_the_unknown_future_is_a_gap_not_a_death() -> None:
    values = [[1, 2, 3, 4, 5, 6], [1, 2, 3, 0, 0, 0]]
    present = [[True] * 6, [True, True, True, False, False, False]]
    _, ok = sum_increases(values, present, lookback_minutes=5, known_minutes=6)
    assert ok.tolist() == [False, True, True, False, False, False]


def test_minutes_past_the_known_edge_are_missing() -> None:
    _, ok = sum_increases([[1, 2, 3, 4]], [[True] * 4], lookback_minutes=1, known_minutes=3)
    assert ok.tolist() == [False, True, True, False]


def test_no_series_means_no_data() -> None:
    inc, ok = sum_increases(np.zeros((0, 5)), np.zeros((0, 5), dtype=bool))
    assert not ok.any()


def test_minute_counts_items_concat_and_equality() -> None:
    a = MinuteCounts(T0, np.array([1, 0], np.int64), np.array([True, False]))
    b = MinuteCounts(T0 + timedelta(minutes=2), np.array([5], np.int64), np.array([True]))
    joined = a.concat(b)
    assert list(joined.items()) == [
        (T0, 1),
        (T0 + timedelta(minutes=1), None),
        (T0 + timedelta(minutes=2), 5),
    ]
    assert joined.equals(MinuteCounts(T0, np.array([1, 99, 5], np.int64), np.array([True, False, True])))
    with pytest.raises(ValueError):
        b.concat(a)
    with pytest.raises(ValueError):
        to_epoch_minute(T0 + timedelta(seconds=1))


@st.composite
def counter_histories(draw: st.DrawFn) -> tuple[list[int], list[bool], list[int], list[bool]]:
    """(counter values at minute ends, observed, true increments, reset flags) for one series."""
    n = draw(st.integers(2, 80))
    values, observed, increments, resets = [], [], [], []
    value = 0
    for i in range(n):
        reset = i > 0 and value > 0 and draw(st.booleans()) and draw(st.booleans())
        # a restart is visible only when the new value is below the old one: keep it so
        inc = draw(st.integers(0, value - 1)) if reset else draw(st.integers(0, 10**6))
        value = inc if reset else value + inc
        values.append(value)
        increments.append(inc)
        resets.append(reset)
        observed.append(draw(st.integers(0, 4)) > 0)
    return values, observed, increments, resets


@given(counter_histories())
@settings(max_examples=300, deadline=None)
def test_recovered_increments_equal_generated_ones(
    history: tuple[list[int], list[bool], list[int], list[bool]],
) -> None:
    values, observed, increments, _ = history
    inc, ok = series_increases(values, observed)
    obs = np.array(observed)
    expected_present = obs & np.concatenate([[False], obs[:-1]])
    assert ok.tolist() == expected_present.tolist()
    assert inc[ok].astype(np.int64).tolist() == np.array(increments)[ok].tolist()
    # gap minutes are missing, never zero
    assert not ok[~obs].any()


@given(st.lists(counter_histories(), min_size=1, max_size=4), st.integers(1, 6))
@settings(max_examples=200, deadline=None)
def test_sum_over_series_equals_the_sum_of_generated_increments(
    histories: list[tuple[list[int], list[bool], list[int], list[bool]]], lookback: int
) -> None:
    n = min(len(h[0]) for h in histories)
    # every series is known from the first minute and is never quiet for `lookback` minutes in a row:
    # then a minute is present exactly when every series was observed in it and the one before
    values = np.array([h[0][:n] for h in histories], dtype=np.float64)
    observed = np.array([h[1][:n] for h in histories])
    observed[:, 0] = True
    for row in observed:
        quiet = 0
        for i in range(n):
            quiet = 0 if row[i] else quiet + 1
            if quiet >= lookback:
                row[i] = True
                quiet = 0
    increments = np.array([h[2][:n] for h in histories])
    inc, ok = sum_increases(values, observed, lookback_minutes=lookback)
    continuing = observed & np.concatenate([np.zeros((len(histories), 1), bool), observed[:, :-1]], axis=1)
    expected_present = continuing.all(axis=0)
    assert ok.tolist() == expected_present.tolist()
    assert inc[ok].astype(np.int64).tolist() == increments.sum(axis=0)[ok].tolist()
