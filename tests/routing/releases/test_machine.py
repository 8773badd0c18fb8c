"""The pure transition table and wave planning."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.releases import machine
from routing.releases.machine import TransitionRefused, next_state, plan_waves


def test_it_follows_the_happy_path():
    state = machine.DRAFT
    for event, expected in (
        (machine.SUBMIT, machine.PENDING_APPROVAL),
        (machine.APPROVE, machine.APPROVED),
        (machine.START, machine.ROLLING_OUT),
        (machine.ADVANCE, machine.ROLLING_OUT),
        (machine.COMPLETE, machine.COMPLETED),
    ):
        state = next_state(state, event)
        assert state == expected


def test_it_refuses_edges_the_table_does_not_have():
    with pytest.raises(TransitionRefused):
        next_state(machine.DRAFT, machine.APPROVE)
    with pytest.raises(TransitionRefused):
        next_state(machine.COMPLETED, machine.CANCEL)
    with pytest.raises(TransitionRefused):
        next_state(machine.REJECTED, machine.SUBMIT)
    with pytest.raises(TransitionRefused):
        next_state(machine.DRAFT, "explode")


def test_it_resumes_to_where_it_paused_and_nowhere_else():
    assert next_state(machine.PAUSED, machine.RESUME, paused_from=machine.ROLLING_OUT) == machine.ROLLING_OUT
    assert (
        next_state(machine.PAUSED, machine.RESUME, paused_from=machine.PENDING_APPROVAL)
        == machine.PENDING_APPROVAL
    )
    with pytest.raises(TransitionRefused):
        next_state(machine.PAUSED, machine.RESUME, paused_from=machine.COMPLETED)
    with pytest.raises(TransitionRefused):
        next_state(machine.PAUSED, machine.RESUME)


@given(st.sampled_from(machine.STATES), st.sampled_from(machine.EVENTS))
def test_final_states_never_move_except_a_completed_rollback(state, event):
    if state in machine.FINAL_STATES and not (state == machine.COMPLETED and event == machine.ROLLBACK):
        with pytest.raises(TransitionRefused):
            next_state(state, event, paused_from=machine.ROLLING_OUT)


def test_it_lists_allowed_events():
    assert machine.allowed_events(machine.PENDING_APPROVAL) == ["approve", "cancel", "pause", "reject"]
    assert "resume" in machine.allowed_events(machine.PAUSED, paused_from=machine.APPROVED)


def test_it_gives_every_wave_at_least_one_gateway():
    assert plan_waves(1, list(machine.DEFAULT_WAVES)) == [(0, 1, 600.0)]
    assert plan_waves(3, list(machine.DEFAULT_WAVES)) == [(0, 1, 600.0), (1, 2, 900.0), (2, 3, 0.0)]
    assert plan_waves(100, list(machine.DEFAULT_WAVES)) == [(0, 5, 600.0), (5, 25, 900.0), (25, 100, 0.0)]
    assert plan_waves(0, list(machine.DEFAULT_WAVES)) == []


@given(
    st.integers(min_value=1, max_value=500),
    st.lists(
        st.tuples(st.floats(min_value=0.1, max_value=100), st.integers(0, 1000)), min_size=1, max_size=6
    ),
)
def test_waves_cover_every_gateway_once_in_order(n, raw):
    plan = sorted(raw)
    waves = plan_waves(n, plan)
    assert waves[0][0] == 0 and waves[-1][1] == n
    for (_a, stop, _b), (start, stop2, _c) in zip(waves, waves[1:], strict=False):
        assert stop == start and stop2 > start
    assert all(stop > start for start, stop, _ in waves)
